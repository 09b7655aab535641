"use strict";
// Messages: search every tenant's messages (GET /api/v1/admin/messages, with this
// session) and one message's parts and attempts (#messages/<id>).
(function () {
    const { el, api, time } = Console;
    const STATES = ["", "queued", "submitted", "delivered", "undeliverable", "expired", "rejected", "failed"];

    function results(rows) {
        return Console.table([
            ["Message", (m) => el("a", { href: "#messages/" + encodeURIComponent(m.message_id), class: "message-link", text: m.message_id })],
            ["Created", (m) => time(m.created_at)],
            ["Owner", (m) => m.owner],
            ["Destination", (m) => m.destination],
            ["Status", (m) => el("span", { class: "state", "data-state": m.status, text: m.status })],
            ["Parts", (m) => m.parts_total],
            ["Transaction", (m) => m.transaction_id || "—"],
            ["Campaign", (m) => m.campaign || "—"],
        ], rows, { id: "messages-table" });
    }

    function field(label, name, attrs) {
        return el("label", {}, label, el("input", Object.assign({ name }, attrs || {})));
    }

    function searchForm(ctx) {
        const status = el("select", { name: "status" }, STATES.map((s) => el("option", { value: s, text: s || "any" })));
        const form = el("form", { id: "message-search", class: "search" },
            field("Message id", "message_id"), field("Transaction id", "transaction_id"),
            field("Destination", "destination", { inputmode: "tel" }),
            field("App / owner", "owner", { placeholder: "app:12" }),
            el("label", {}, "State", status),
            field("Since", "since", { type: "datetime-local" }),
            field("Until", "until", { type: "datetime-local" }),
            field("Limit", "limit", { type: "number", min: "1", max: "500", value: "50" }),
            el("button", { type: "submit", text: "Search" }));
        form.addEventListener("submit", async (event) => {
            event.preventDefault();
            const query = new URLSearchParams();
            for (const [key, value] of new FormData(form).entries()) {
                if (!value) continue;
                query.set(key, key === "since" || key === "until" ? new Date(value).toISOString() : value);
            }
            ctx.error.hidden = true;
            try {
                const answer = await api("GET", "/api/v1/admin/messages?" + query.toString());
                ctx.list.replaceChildren(results(answer.data));
            } catch (e) {
                ctx.error.hidden = false;
                ctx.error.textContent = e.message;
            }
        });
        return form;
    }

    async function detail(ctx, id) {
        const box = el("div", { id: "message-detail" });
        ctx.root.append(el("p", {}, el("a", { href: "#messages", text: "← all messages" })), box);
        let answer;
        try {
            answer = await api("GET", "/api/v1/admin/messages/" + encodeURIComponent(id));
        } catch (e) {
            box.append(el("p", { class: "error", text: e.message }));
            return;
        }
        const { message, parts, attempts } = answer.data;
        const facts = [
            ["Message id", message.message_id], ["State", message.status], ["Owner", message.owner],
            ["Source", message.source], ["Destination", message.destination],
            ["Route (esme)", message.esme], ["Encoding", message.encoding + ", " + message.mode],
            ["Transaction id", message.transaction_id || "—"], ["Campaign", message.campaign || "—"],
            ["Created", time(message.created_at)], ["Updated", time(message.updated_at)],
            ["Error", message.error || "—"], ["Text", message.text],
        ];
        box.append(el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])));
        box.append(el("h2", { text: "Parts" }), Console.table([
            ["Part", (p) => p.seq],
            ["Link", (p) => p.link_id ?? "—"],
            ["SMSC id", (p) => p.smsc_id || "—"],
            ["State", (p) => el("span", { class: "state", "data-state": p.state, text: p.state })],
            ["Submitted", (p) => time(p.submitted_at)],
            ["Receipt", (p) => time(p.receipt_at)],
            ["Error", (p) => p.error || "—"],
        ], parts, { id: "parts-table" }));
        box.append(el("h2", { text: "Attempts" }));
        if (!attempts.length) {
            box.append(el("p", { class: "muted", text: "No attempts recorded." }));
        } else {
            box.append(Console.table([
                ["Attempt", (a) => a.attempt],
                ["Channel", (a) => a.channel_kind + " " + a.channel_id],
                ["Started", (a) => time(a.started_at)],
                ["Ended", (a) => time(a.ended_at)],
                ["Outcome", (a) => el("span", { class: "state", "data-state": a.outcome, text: a.outcome })],
                ["Answer", (a) => a.error || "—"],
            ], attempts, { id: "attempts-table" }));
        }
    }

    Console.register("messages", {
        async render(ctx, data) {
            if (ctx.arg) {
                await detail(ctx, ctx.arg);
                return;
            }
            ctx.error = el("p", { class: "error", role: "alert", hidden: true });
            ctx.list = el("div", { id: "message-results" }, results(data.messages));
            ctx.root.append(searchForm(ctx), ctx.error, ctx.list);
        },
    });
})();
