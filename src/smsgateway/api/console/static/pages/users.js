"use strict";
// Users and their apps (secrets are never shown: they are encrypted at rest).
(function () {
    const { el, time } = Console;
    Console.register("users", {
        render(ctx, data) {
            ctx.root.append(Console.table([
                ["User", (u) => u.id],
                ["Email", (u) => u.email],
                ["Admin", (u) => (u.is_admin ? "yes" : "no")],
                ["Created", (u) => time(u.created_at)],
                ["App", (u) => u.app_id ?? "—"],
                ["App name", (u) => u.app_name || "—"],
            ], data.users, { id: "users-table" }));
            if (!data.users.length) ctx.root.append(el("p", { class: "muted", text: "No users yet." }));
        },
    });
})();
