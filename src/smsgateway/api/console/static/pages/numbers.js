"use strict";
// Numbers (document 002): number users (create, approve, deactivate) and the pool
// of virtual numbers (import, states). A new user's credentials are shown once.
(function () {
    const { el, time } = Console;

    function notice(ctx, node) {
        ctx.notice.replaceChildren(node);
        ctx.notice.hidden = false;
    }

    async function act(ctx, name, body) {
        ctx.error.hidden = true;
        try {
            return (await Console.action("numbers", name, body)).data;
        } catch (e) {
            ctx.error.hidden = false;
            ctx.error.textContent = e.message;
            return null;
        }
    }

    function flag(ctx, user, key, setLabel, clearLabel) {
        const on = user[key];
        return el("button", {
            type: "button", "data-action": key, "data-user": String(user.user_id),
            text: on ? clearLabel : setLabel,
            onclick: async () => {
                if (await act(ctx, "set_user", { user_id: user.user_id, [key]: !on })) Console.refresh();
            },
        });
    }

    function createForm(ctx) {
        const email = el("input", { name: "email", type: "email", required: true, placeholder: "ops@example.com" });
        const name = el("input", { name: "name", placeholder: "name (optional)" });
        return el("form", {
            id: "number-user-create", class: "search",
            onsubmit: async (event) => {
                event.preventDefault();
                const made = await act(ctx, "create_user", { email: email.value, name: name.value });
                if (!made) return;
                await Console.refresh();
                // Shown once: the gateway keeps only a hash of the key.
                const box = document.querySelector("#page-numbers .notice");
                box.replaceChildren(el("div", { id: "number-user-secret" },
                    el("strong", { text: "Number user " + made.user_id + " created. Copy these now; they are not shown again." }),
                    el("div", {}, "API key: ", el("code", { class: "secret", text: made.api_key })),
                    el("div", {}, "Webhook secret: ", el("code", { class: "secret", text: made.webhook_secret }))));
                box.hidden = false;
            },
        }, el("label", {}, "Email", email), el("label", {}, "Name", name),
            el("button", { type: "submit", text: "Create number user" }));
    }

    function importForm(ctx) {
        const list = el("textarea", { name: "numbers", rows: "3", cols: "30", placeholder: "+447911123456, one per line" });
        return el("form", {
            id: "numbers-import", class: "search",
            onsubmit: async (event) => {
                event.preventDefault();
                const done = await act(ctx, "import_numbers", { numbers: list.value.split(/[\s,]+/) });
                if (!done) return;
                await Console.refresh();
                const box = document.querySelector("#page-numbers .notice");
                box.replaceChildren(el("span", { text: done.added + " added" + (done.existing.length ? ", already there: " + done.existing.join(", ") : "") }));
                box.hidden = false;
            },
        }, el("label", {}, "Numbers", list), el("button", { type: "submit", text: "Import" }));
    }

    Console.register("numbers", {
        render(ctx, data) {
            ctx.error = el("p", { class: "error", role: "alert", hidden: true });
            ctx.notice = el("div", { class: "notice card", hidden: true });
            const s = data.summary;
            ctx.root.append(ctx.notice, ctx.error,
                el("p", { id: "numbers-summary", text: Object.entries(s).map(([k, v]) => k + ": " + v).join(" · ") || "no numbers" }),
                el("h2", { text: "Number users" }), createForm(ctx),
                Console.table([
                    ["User", (u) => u.user_id],
                    ["Email", (u) => u.email],
                    ["Name", (u) => u.name || "—"],
                    ["Approved", (u) => (u.approved ? "yes" : "no")],
                    ["Active", (u) => (u.active ? "yes" : "no")],
                    ["Numbers taken", (u) => u.numbers_taken],
                    ["OTPs received", (u) => u.otps_received],
                    ["Last number", (u) => time(u.last_number_at)],
                    ["", (u) => el("div", { class: "actions" }, flag(ctx, u, "approved", "Approve", "Withdraw approval"), flag(ctx, u, "active", "Activate", "Deactivate"))],
                ], data.users, { id: "number-users-table" }),
                el("h2", { text: "Numbers" }), importForm(ctx),
                Console.table([
                    ["Number", (n) => n.phone_number],
                    ["Country", (n) => n.country_id],
                    ["State", (n) => el("span", { class: "state", "data-state": n.state, text: n.state })],
                    ["User", (n) => n.user_id ?? "—"],
                    ["Assigned until", (n) => time(n.assigned_until)],
                    ["Quarantined until", (n) => time(n.quarantined_until)],
                    ["Times assigned", (n) => n.times_assigned],
                ], data.numbers, { id: "numbers-table" }));
        },
    });
})();
