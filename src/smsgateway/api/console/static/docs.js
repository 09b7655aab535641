"use strict";
// The OpenAPI document of this gateway, rendered by the vendored Swagger UI.
window.addEventListener("DOMContentLoaded", function () {
    window.ui = SwaggerUIBundle({
        url: "/openapi.json",
        dom_id: "#swagger-ui",
        deepLinking: true,
        validatorUrl: null,
        tryItOutEnabled: false,
    });
});
