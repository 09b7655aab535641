"use strict";
// The audit log, newest first.
(function () {
    const { el, time } = Console;
    Console.register("audit", {
        render(ctx, data) {
            ctx.root.append(el("p", {}, el("button", { type: "button", text: "Reload", onclick: () => Console.refresh() })));
            ctx.root.append(Console.table([
                ["When", (a) => time(a.at)],
                ["Actor", (a) => a.actor],
                ["Action", (a) => a.action],
                ["Target", (a) => a.target],
                ["Detail", (a) => a.detail || "—"],
            ], data.audit, { id: "audit-table" }));
        },
    });
})();
