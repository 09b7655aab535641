"use strict";
// OAuth clients of the token endpoint: create (the secret is shown once), delete.
(function () {
    const { el, time } = Console;

    async function act(ctx, name, body) {
        ctx.error.hidden = true;
        try {
            return (await Console.action("oauth", name, body)).data;
        } catch (e) {
            ctx.error.hidden = false;
            ctx.error.textContent = e.message;
            return null;
        }
    }

    function createForm(ctx) {
        const name = el("input", { name: "name", required: true, placeholder: "billing service" });
        const scopes = el("input", { name: "scopes", required: true, value: "client.sms.send" });
        return el("form", {
            id: "oauth-client-create", class: "search",
            onsubmit: async (event) => {
                event.preventDefault();
                const made = await act(ctx, "create_client", {
                    name: name.value, scopes: scopes.value.split(/[\s,]+/).filter(Boolean),
                });
                if (!made) return;
                await Console.refresh();
                const box = document.querySelector("#page-oauth .notice");
                box.replaceChildren(el("div", { id: "oauth-client-secret" },
                    el("strong", { text: "Client " + made.name + " created. Copy the secret now; it is not shown again." }),
                    el("div", {}, "client_id: ", el("code", { class: "client-id", text: made.client_id })),
                    el("div", {}, "client_secret: ", el("code", { class: "secret", text: made.client_secret }))));
                box.hidden = false;
            },
        }, el("label", {}, "Name", name), el("label", {}, "Scopes", scopes),
            el("button", { type: "submit", text: "Create client" }));
    }

    Console.register("oauth", {
        render(ctx, data) {
            ctx.error = el("p", { class: "error", role: "alert", hidden: true });
            ctx.notice = el("div", { class: "notice card", hidden: true });
            ctx.root.append(ctx.notice, ctx.error, createForm(ctx), Console.table([
                ["Client id", (c) => el("code", { text: c.client_id })],
                ["Name", (c) => c.name],
                ["Scopes", (c) => c.scopes.join(" ")],
                ["Created", (c) => time(c.created_at)],
                ["By", (c) => c.created_by],
                ["", (c) => el("button", {
                    type: "button", class: "danger", "data-action": "delete", text: "Delete",
                    onclick: async () => {
                        if (await act(ctx, "delete_client", { client_id: c.client_id })) Console.refresh();
                    },
                })],
            ], data.clients, { id: "oauth-clients-table" }));
        },
    });
})();
