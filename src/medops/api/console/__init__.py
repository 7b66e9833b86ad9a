"""The web console: the pages clinicians, ML engineers, auditors and admins look at.

Served by ``medops server`` under ``/`` (and by ``medops console`` on a local port). Pages are
HTML rendered on the server, with charts drawn as inline SVG: no chart library, no font, no
asset from another origin. The one script (``static/console.js``) signs in, sends the forms of
actions to the API with the session's CSRF token, and nothing else; every action is an API
call, so it passes the same permission checks and audit as the API. Each page route declares
the permission that reads it (``api/deps.require``), as every API route does.
"""
