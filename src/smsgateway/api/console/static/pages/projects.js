"use strict";
// OTP projects: API keys (create: shown once; revoke) and the project's phone
// (link one through the QR flow, see it online, unlink).
(function () {
    const { el, time } = Console;

    async function act(ctx, name, body) {
        ctx.error.hidden = true;
        try {
            return (await Console.action("projects", name, body)).data;
        } catch (e) {
            ctx.error.hidden = false;
            ctx.error.textContent = e.message;
            return null;
        }
    }

    function show(node) {
        const box = document.querySelector("#page-projects .notice");
        box.replaceChildren(node);
        box.hidden = false;
    }

    function deviceBox(ctx, p) {
        const d = p.device;
        const box = el("div", { class: "device", "data-project": String(p.project_id) });
        if (d) {
            box.append(
                el("span", { class: "badge device-state", "data-status": d.online ? "BOUND" : "CLOSED", text: d.online ? "online" : "offline" }),
                " " + d.name + ", last seen " + time(d.last_seen_ms) + ", queue " + d.queue_depth + " ",
                el("button", {
                    type: "button", class: "danger", "data-action": "revoke-device", text: "Unlink phone",
                    onclick: async () => { if (await act(ctx, "revoke_device", { project_id: p.project_id })) Console.refresh(); },
                }));
        } else {
            box.append(el("span", { class: "muted", text: "No phone linked. " }), el("button", {
                type: "button", "data-action": "link-device", text: "Link a phone",
                onclick: async () => {
                    const link = await act(ctx, "link_device", { project_id: p.project_id });
                    if (!link) return;
                    show(el("div", { id: "device-link" },
                        el("strong", { text: "Scan with the phone, or type the code in the SMS Gateway app (sign in \"By code\")." }),
                        el("div", {}, el("img", { class: "qr", src: link.qr_image, alt: "QR code for linking a phone", width: "220", height: "220" })),
                        el("div", {}, "Server: ", el("code", { class: "server-url", text: link.server_url })),
                        el("div", {}, "Code: ", el("code", { class: "link-code", text: link.code })),
                        el("div", {}, "Valid until " + time(link.expires_at_ms))));
                    watch(ctx, p.project_id);
                },
            }));
        }
        return box;
    }

    function watch(ctx, projectId) {
        // Until the phone shows up (or the operator leaves), look again every 2 s.
        clearInterval(ctx.timer);
        ctx.timer = setInterval(async () => {
            if (!document.getElementById("page-projects")) { clearInterval(ctx.timer); return; }
            const snap = await Console.api("GET", "/console/api/pages/projects");
            const p = snap.data.projects.find((x) => x.project_id === projectId);
            if (p && p.device && p.device.online) {
                clearInterval(ctx.timer);
                await Console.refresh();
            }
        }, 2000);
    }

    function projectCard(ctx, p) {
        const keys = Console.table([
            ["Key", (k) => el("code", { text: k.key_id })],
            ["Name", (k) => k.name || "—"],
            ["Created", (k) => time(k.created_at)],
            ["Revoked", (k) => time(k.revoked_at)],
            ["", (k) => (k.revoked_at ? "" : el("button", {
                type: "button", class: "danger", "data-action": "revoke-key", text: "Revoke",
                onclick: async () => { if (await act(ctx, "revoke_key", { project_id: p.project_id, key_id: k.key_id })) Console.refresh(); },
            }))],
        ], p.api_keys, { class: "keys" });
        return el("section", { class: "card project", "data-project": String(p.project_id) },
            el("h2", { text: p.name + " (project " + p.project_id + ", channel " + p.channel + ")" }),
            deviceBox(ctx, p),
            el("h3", { text: "API keys" }), keys,
            el("button", {
                type: "button", "data-action": "create-key", text: "New API key",
                onclick: async () => {
                    const key = await act(ctx, "create_key", { project_id: p.project_id });
                    if (!key) return;
                    await Console.refresh();
                    show(el("div", { id: "project-key" },
                        el("strong", { text: "API key " + key.key_id + " for project " + key.project_id + ". Copy it now; it is not shown again." }),
                        el("div", {}, el("code", { class: "secret", text: key.api_key }))));
                },
            }));
    }

    Console.register("projects", {
        render(ctx, data) {
            ctx.error = el("p", { class: "error", role: "alert", hidden: true });
            const name = el("input", { name: "name", required: true, placeholder: "My app" });
            const form = el("form", {
                id: "project-create", class: "search",
                onsubmit: async (event) => {
                    event.preventDefault();
                    if (await act(ctx, "create_project", { name: name.value })) Console.refresh();
                },
            }, el("label", {}, "New project", name), el("button", { type: "submit", text: "Create project" }));
            ctx.root.append(el("div", { class: "notice card", hidden: true }), ctx.error, form,
                ...data.projects.map((p) => projectCard(ctx, p)));
            if (!data.projects.length) ctx.root.append(el("p", { class: "muted", text: "No projects yet." }));
        },
    });
})();
