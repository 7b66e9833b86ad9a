// medops API explorer: starts the vendored Swagger UI on /openapi.json (the /docs page has
// no inline script). Requests tried out from the page go to this server only; with a console
// session they carry its CSRF header, as console.js's do.
"use strict";

function medopsCsrfToken() {
  const match = document.cookie.split("; ").find((c) => c.startsWith("medops_csrf="));
  return match ? decodeURIComponent(match.slice("medops_csrf=".length)) : "";
}

window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    // Off: Swagger UI draws a deep link as a link inside the operation's button (nested
    // interactive controls, an accessibility failure axe-core reports as serious).
    deepLinking: false,
    // Tags start collapsed: with every operation expanded at once (about 170 here) Swagger UI
    // stops drawing after the first tag; a reader opens the group they need.
    docExpansion: "none",
    validatorUrl: null, // the default would send the document to validator.swagger.io
    requestInterceptor: (request) => {
      const token = medopsCsrfToken();
      if (token) request.headers["X-CSRF-Token"] = token;
      return request;
    },
  });
});
