// Starts Swagger UI on the Data Pusher OpenAPI document. This file is
// separate from index.html so that the page's Content-Security-Policy can
// forbid inline scripts.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/schema/?format=json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayRequestDuration: true,
    // The default validator badge loads an image from validator.swagger.io,
    // so null turns it off and the page contacts no other host.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
