"use strict";
// Users and their apps (secrets are never shown: they are encrypted at rest); an
// operator may make a user an admin (who may then sign in here) or take it back.
(function () {
    const { el, time } = Console;
    Console.register("users", {
        render(ctx, data) {
            const error = el("p", { class: "error", role: "alert", hidden: true });
            const toggle = (u) => el("button", {
                type: "button", "data-action": "toggle-admin", "data-user": String(u.id),
                text: u.is_admin ? "Remove admin" : "Make admin",
                onclick: async () => {
                    error.hidden = true;
                    try {
                        await Console.action("users", "toggle_admin", { user_id: u.id });
                        Console.refresh();
                    } catch (e) {
                        error.hidden = false;
                        error.textContent = e.message;
                    }
                },
            });
            ctx.root.append(error, Console.table([
                ["User", (u) => u.id],
                ["Email", (u) => u.email],
                ["Admin", (u) => (u.is_admin ? "yes" : "no")],
                ["Created", (u) => time(u.created_at)],
                ["App", (u) => u.app_id ?? "—"],
                ["App name", (u) => u.app_name || "—"],
                ["", toggle],
            ], data.users, { id: "users-table" }));
            if (!data.users.length) ctx.root.append(el("p", { class: "muted", text: "No users yet." }));
        },
    });
})();
