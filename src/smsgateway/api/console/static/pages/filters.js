"use strict";
// Content filters (CEL rules) and what they blocked.
(function () {
    const { el } = Console;
    Console.register("filters", {
        render(ctx, data) {
            ctx.root.append(Console.table([
                ["Name", (f) => f.name],
                ["Mode", (f) => f.mode],
                ["Active", (f) => (f.active ? "yes" : "no")],
                ["Rule", (f) => el("code", { text: f.rule })],
                ["From", (f) => f.source],
                ["Blocked", (f) => f.blocked],
                ["Errors", (f) => f.errors],
                ["Description", (f) => f.description || "—"],
            ], data.filters, { id: "filters-table" }));
            if (!data.filters.length) ctx.root.append(el("p", { class: "muted", text: "No filters." }));
        },
    });
})();
