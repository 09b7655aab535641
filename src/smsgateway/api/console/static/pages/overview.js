"use strict";
// Overview: live rates (per second, 5 min; per minute, 24 h), totals, queues,
// system load, license, link states.
(function () {
    const { el, time } = Console;
    const SECONDS = 300;
    const MINUTES = 1440;
    const COLORS = ["#1f6feb", "#2da44e", "#cf222e"];
    const LABELS = ["requests", "messages", "errors"];

    function columns(points) {
        // [[t, req, msg, err], ...] -> uPlot's [[t...], [req...], [msg...], [err...]]
        const data = [[], [], [], []];
        for (const p of points) for (let i = 0; i < 4; i++) data[i].push(p[i]);
        return data;
    }

    function window_(span) {
        // The x axis always spans the whole window, ending at the newest point.
        return (u, min, max) => [max - span, max];
    }

    function chart(target, title, unit, points) {
        const box = el("figure", { class: "chart" }, el("figcaption", { text: title }));
        target.append(box);
        // Two charts side by side when there is room for both.
        const room = target.clientWidth || 900;
        const width = Math.max(320, Math.min(900, (room > 1000 ? room / 2 : room) - 28));
        const plot = new uPlot({
            width,
            height: 220,
            scales: { x: { time: true, range: window_(unit === "per s" ? SECONDS : MINUTES * 60) } },
            axes: [{}, { label: unit }],
            series: [{}].concat(LABELS.map((label, i) => ({
                label: label + (unit === "per s" ? "/s" : "/min"),
                stroke: COLORS[i],
                width: 2,
            }))),
        }, columns(points), box);
        return { box, plot, points: points.slice() };
    }

    function mark(c) {
        // What a test (or a curious operator with devtools) can read off the chart.
        let messages = 0;
        for (const p of c.points) messages += p[2];
        c.box.dataset.points = String(c.points.length);
        c.box.dataset.messages = String(messages);
        c.box.dataset.last = c.points.length ? String(c.points[c.points.length - 1][0]) : "";
    }

    function stat(name, label) {
        const value = el("span", { class: "value", id: "stat-" + name, text: "—" });
        return el("div", { class: "stat" }, el("span", { class: "label", text: label }), value);
    }

    function meter(name, label) {
        return el("div", { class: "stat" },
            el("span", { class: "label", text: label }),
            el("meter", { id: "meter-" + name, min: "0", max: "100", value: "0" }),
            el("span", { class: "value small", id: "stat-" + name, text: "—" }));
    }

    function set(name, value) {
        const node = document.getElementById("stat-" + name);
        if (node) node.textContent = String(value);
    }

    function figures(ctx, f, point) {
        if (point) {
            set("rps", point[1]);
            set("mps", point[2]);
            set("eps", point[3]);
        }
        set("requests", f.totals.requests);
        set("messages", f.totals.messages);
        set("errors", f.totals.errors);
        set("stored", f.totals.stored);
        set("queue", f.queues.total);
        set("bound", f.links_bound + " / " + f.links_total);
        for (const key of ["cpu", "ram", "disk"]) {
            set(key, f.system[key] + " %");
            document.getElementById("meter-" + key).value = f.system[key];
        }
        set("rss", f.system.rss_mb + " MB");
        const lic = f.license;
        set("license", lic.status + (lic.company ? " — " + lic.company + ", until " + lic.valid_until
            + ", " + lic.max_connections + " links, " + lic.max_tps + " TPS" : ""));
        ctx.root.dataset.messagesTotal = String(f.totals.messages);
    }

    function links(ctx, view) {
        const box = ctx.linksBox;
        box.replaceChildren(Console.table([
            ["Link", (l) => l.name],
            ["State", (l) => el("span", { class: "badge", "data-status": l.status, text: l.status })],
            ["TPS", (l) => l.current_tps + " / " + (l.limit_tps || "∞")],
            ["Queue", (l) => l.queue_depth],
            ["Last bind error", (l) => l.last_bind_error || "—"],
        ], view.links, { id: "overview-links" }));
    }

    function render(ctx, data) {
        const stats = el("div", { class: "stats" },
            stat("rps", "Requests/s"), stat("mps", "Messages/s"), stat("eps", "Errors/s"),
            stat("requests", "Requests since start"), stat("messages", "Messages since start"),
            stat("errors", "Errors since start"), stat("stored", "Messages stored (10 s)"),
            stat("queue", "Queued for links"), stat("bound", "Links bound"));
        const system = el("div", { class: "stats" },
            meter("cpu", "CPU"), meter("ram", "RAM"), meter("disk", "Disk"),
            stat("rss", "Gateway memory"), stat("license", "License"));
        const charts = el("div", { class: "charts" });
        ctx.linksBox = el("div", { class: "links-box" });
        ctx.root.append(stats, charts, el("h2", { text: "System" }), system,
            el("h2", { text: "Links" }), ctx.linksBox);
        ctx.seconds = chart(charts, "Last 5 minutes, per second", "per s", data.seconds);
        ctx.minutes = chart(charts, "Last 24 hours, per minute", "per min", data.minutes);
        ctx.seconds.box.id = "chart-seconds";
        ctx.minutes.box.id = "chart-minutes";
        mark(ctx.seconds);
        mark(ctx.minutes);
        const last = data.seconds.length ? data.seconds[data.seconds.length - 1] : null;
        figures(ctx, data, last);
        links(ctx, data);
    }

    function addPoint(ctx, p) {
        const s = ctx.seconds;
        s.points.push(p);
        if (s.points.length > SECONDS) s.points.splice(0, s.points.length - SECONDS);
        s.plot.setData(columns(s.points));
        mark(s);
        const m = ctx.minutes;
        const minute = p[0] - (p[0] % 60);
        const tail = m.points[m.points.length - 1];
        if (tail && tail[0] === minute) {
            for (let i = 1; i < 4; i++) tail[i] += p[i];
        } else {
            m.points.push([minute, p[1], p[2], p[3]]);
            if (m.points.length > MINUTES) m.points.splice(0, m.points.length - MINUTES);
        }
        m.plot.setData(columns(m.points));
        mark(m);
    }

    Console.register("overview", {
        render,
        onEvent(ctx, topic, data) {
            if (topic === "metrics") {
                addPoint(ctx, data.point);
                figures(ctx, data, data.point);
                ctx.root.dataset.updated = time(Date.now());
            } else if (topic === "links") {
                links(ctx, data);
            }
        },
    });
})();
