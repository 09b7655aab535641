"use strict";
// Links and pools: state, last bind error, pace, window, queue, last traffic;
// enable / disable with a reason (the same core call as PUT /api/v1/smpp/{id}/toggle).
(function () {
    const { el, api, seconds } = Console;

    const COLUMNS = [
        ["id", "Id"], ["name", "Name"], ["status", "State"], ["reason", "Reason"],
        ["last_bind_error", "Last bind error"], ["tps", "TPS now / limit"],
        ["window", "Window"], ["queue_depth", "Queue"], ["last_submit_at", "Last submit"],
        ["last_receipt_at", "Last receipt"], ["endpoint", "SMSC"], ["actions", ""],
    ];

    function cellText(link, key) {
        switch (key) {
            case "tps": return link.current_tps + " / " + (link.limit_tps || "∞");
            case "window": return link.window_used + " / " + link.window;
            case "last_submit_at":
            case "last_receipt_at": return seconds(link[key]);
            case "last_bind_error":
                return link.last_bind_error
                    ? link.last_bind_error + " (" + seconds(link.last_bind_error_at) + ")" : "—";
            case "reason": return link.reason || "—";
            default: return String(link[key] ?? "");
        }
    }

    function actions(ctx, link) {
        const box = el("div", { class: "actions" });
        if (!link.enabled) {
            box.append(el("button", {
                type: "button", class: "enable", "data-action": "enable", text: "Enable",
                onclick: () => toggle(ctx, link.id, true, ""),
            }));
            return box;
        }
        const reason = el("input", {
            type: "text", name: "reason", placeholder: "why", maxlength: "256",
            required: true, "aria-label": "Reason for disabling " + link.name,
        });
        const form = el("form", {
            class: "disable-form",
            onsubmit: (event) => {
                event.preventDefault();
                toggle(ctx, link.id, false, reason.value.trim());
            },
        }, reason, el("button", { type: "submit", class: "danger", "data-action": "disable", text: "Disable" }));
        box.append(form);
        return box;
    }

    async function toggle(ctx, id, enabled, reason) {
        ctx.error.hidden = true;
        try {
            const view = await api("POST", "/console/api/links/" + id + "/toggle", { enabled, reason });
            update(ctx, view, true);
        } catch (e) {
            ctx.error.hidden = false;
            ctx.error.textContent = e.message;
        }
    }

    function linkRow(ctx, link) {
        const row = el("tr", { "data-link-id": String(link.id) });
        row.cells_ = {};
        for (const [key] of COLUMNS) {
            const cell = el("td", { class: "col-" + key });
            row.cells_[key] = cell;
            row.append(cell);
        }
        return row;
    }

    function fill(ctx, row, link, force) {
        for (const [key] of COLUMNS) {
            const cell = row.cells_[key];
            if (key === "status") {
                cell.replaceChildren(el("span", { class: "badge", "data-status": link.status, text: link.status }));
            } else if (key === "actions") {
                // Rebuilt only when the link flips, so a reason being typed survives updates.
                if (force || row.dataset.enabled !== String(link.enabled)) {
                    cell.replaceChildren(actions(ctx, link));
                }
            } else {
                cell.textContent = cellText(link, key);
            }
        }
        row.dataset.enabled = String(link.enabled);
        row.dataset.status = link.status;
    }

    function update(ctx, view, force) {
        const seen = new Set();
        for (const link of view.links) {
            seen.add(String(link.id));
            let row = ctx.rows.get(String(link.id));
            if (!row) {
                row = linkRow(ctx, link);
                ctx.rows.set(String(link.id), row);
                ctx.body.append(row);
            }
            fill(ctx, row, link, force);
        }
        for (const [id, row] of ctx.rows) {
            if (!seen.has(id)) {
                row.remove();
                ctx.rows.delete(id);
            }
        }
        ctx.pools.replaceChildren(Console.table([
            ["Id", (p) => p.id],
            ["Name", (p) => p.name],
            ["State", (p) => el("span", { class: "badge", "data-status": p.status, text: p.status })],
            ["Total TPS", (p) => p.total_tps],
            ["Queue", (p) => p.queue_depth],
            ["Members' share of all their submits since start", (p) => p.members.map((m) => m.name + " " + m.share + " % (" + m.submitted + ")").join(", ") || "—"],
        ], view.pools, { id: "pools-table" }));
        const tried = (a) => ["accepted", "refused", "timeout", "down"].map((o) => o + " " + a[o]).join(", ");
        ctx.lists.replaceChildren(Console.table([
            ["Id", (l) => l.id],
            ["Name", (l) => l.name],
            ["State", (l) => el("span", { class: "badge", "data-status": l.status, text: l.status })],
            ["In flight", (l) => l.in_flight],
            ["Timeout", (l) => l.attempt_timeout_s + " s"],
            ["Members in order (each one's attempts since start, any route)", (l) => el("ol", { class: "members" },
                l.members.map((m) => el("li", { text: m.kind + " " + m.name + " (" + m.status + "): " + tried(m.attempts) })))],
        ], view.lists || [], { id: "lists-table" }));
    }

    Console.register("links", {
        render(ctx, view) {
            ctx.rows = new Map();
            ctx.body = el("tbody");
            ctx.error = el("p", { class: "error", role: "alert", hidden: true });
            const head = el("tr", {}, COLUMNS.map(([, h]) => el("th", { text: h })));
            ctx.pools = el("div");
            ctx.lists = el("div");
            ctx.root.append(ctx.error,
                el("table", { id: "links-table" }, el("thead", {}, head), ctx.body),
                el("h2", { text: "Pools" }), ctx.pools,
                el("h2", { text: "Priority lists (failover)" }), ctx.lists);
            update(ctx, view, true);
        },
        onEvent(ctx, topic, view) {
            if (topic === "links") update(ctx, view, false);
        },
    });
})();
