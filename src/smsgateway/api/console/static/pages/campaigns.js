"use strict";
// Campaigns: SMS the SMSC answered per campaign and link.
(function () {
    const { el, time } = Console;
    Console.register("campaigns", {
        render(ctx, data) {
            ctx.root.append(Console.table([
                ["Campaign", (c) => c.campaign],
                ["Link", (c) => c.link_id],
                ["Sent", (c) => c.sent],
                ["Failed", (c) => c.failed],
                ["Total", (c) => c.total],
                ["Updated", (c) => time(c.updated_at)],
            ], data.campaigns, { id: "campaigns-table" }));
            if (!data.campaigns.length) ctx.root.append(el("p", { class: "muted", text: "No campaigns yet." }));
        },
    });
})();
