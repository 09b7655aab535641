"use strict";
// The console's frame: sign-in, the menu, hash routing, one live stream per page.
// Pages register themselves (static/pages/<name>.js) with Console.register; the
// server's page registry says which pages exist and which topics their stream has.
// Text is always set with textContent, never parsed as HTML.
(function () {
    const pages = new Map();
    const state = { session: null, source: null, nav: 0, page: null };

    class ApiError extends Error {
        constructor(status, message, retryAfter) {
            super(message);
            this.status = status;
            this.retryAfter = retryAfter;
        }
    }

    function el(tag, attrs, ...children) {
        const node = document.createElement(tag);
        for (const [key, value] of Object.entries(attrs || {})) {
            if (value === null || value === undefined || value === false) continue;
            if (key === "text") node.textContent = String(value);
            else if (key === "class") node.className = value;
            else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
            else if (key === "dataset") Object.assign(node.dataset, value);
            else node.setAttribute(key, value === true ? "" : String(value));
        }
        for (const child of children.flat(Infinity)) {
            if (child === null || child === undefined) continue;
            node.append(child instanceof Node ? child : document.createTextNode(String(child)));
        }
        return node;
    }

    function time(ms) {
        if (ms === null || ms === undefined || ms === 0) return "—";
        return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z";
    }

    function seconds(s) {
        return s === null || s === undefined ? "—" : time(s * 1000);
    }

    function table(columns, rows, attrs) {
        // columns: [[heading, row => cell (string | Node)], ...]
        const head = el("tr", {}, columns.map(([h]) => el("th", { text: h })));
        const body = rows.map((row) =>
            el("tr", {}, columns.map(([, cell]) => {
                const value = cell(row);
                return el("td", {}, value instanceof Node ? value : String(value ?? ""));
            })));
        return el("table", attrs || {}, el("thead", {}, head), el("tbody", {}, body));
    }

    async function api(method, url, body) {
        const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
        if (body !== undefined) {
            options.headers["Content-Type"] = "application/json";
            options.body = JSON.stringify(body);
        }
        const response = await fetch(url, options);
        let data = null;
        try {
            data = await response.json();
        } catch (e) {
            data = null;
        }
        if (!response.ok) {
            const message = (data && data.error) || response.statusText;
            const error = new ApiError(response.status, message, response.headers.get("Retry-After"));
            if (response.status === 401 && url !== "/console/api/login" && state.session) {
                showLogin("Your session has ended: sign in again.");
            }
            throw error;
        }
        return data;
    }

    function setLive(status, text) {
        const live = document.getElementById("live");
        live.dataset.state = status;
        live.textContent = text;
    }

    function closeStream() {
        if (state.source) {
            state.source.close();
            state.source = null;
        }
        setLive("off", "offline");
    }

    function showLogin(notice) {
        closeStream();
        state.session = null;
        document.getElementById("main").replaceChildren();
        document.getElementById("nav").replaceChildren();
        document.getElementById("who").textContent = "";
        document.getElementById("logout").hidden = true;
        document.getElementById("login").hidden = false;
        const box = document.getElementById("login-notice");
        box.hidden = !notice;
        box.textContent = notice || "";
        document.getElementById("login-error").hidden = true;
    }

    function showApp(session) {
        state.session = session;
        document.getElementById("login").hidden = true;
        document.getElementById("logout").hidden = false;
        document.getElementById("who").textContent = session.actor;
        const nav = document.getElementById("nav");
        nav.replaceChildren(...session.pages
            .filter((p) => pages.has(p.name))
            .map((p) => el("a", { href: "#" + p.name, "data-page": p.name, text: p.title })));
        navigate();
    }

    async function navigate() {
        if (!state.session) return;
        const [first, ...rest] = (location.hash.slice(1) || "overview").split("/");
        const known = state.session.pages.find((p) => p.name === first && pages.has(p.name));
        const meta = known || state.session.pages[0];
        const page = pages.get(meta.name);
        const token = ++state.nav;
        closeStream();
        for (const link of document.querySelectorAll("#nav a")) {
            link.classList.toggle("current", link.dataset.page === meta.name);
        }
        const root = el("section", { class: "page", id: "page-" + meta.name });
        root.append(el("h1", { text: meta.title }));
        document.getElementById("main").replaceChildren(root);
        const ctx = { root, arg: decodeURIComponent(rest.join("/")), name: meta.name };
        let snapshot;
        try {
            snapshot = await api("GET", "/console/api/pages/" + encodeURIComponent(meta.name));
        } catch (e) {
            if (e.status !== 401) root.append(el("p", { class: "error", text: e.message }));
            return;
        }
        if (token !== state.nav) return; // the operator moved on meanwhile
        state.page = { page, ctx };
        await page.render(ctx, snapshot.data);
        root.dataset.ready = "true";
        if (token !== state.nav) return;
        if (meta.topics && meta.topics.length) openStream(meta, page, ctx, token);
        else setLive("off", "not live");
    }

    function openStream(meta, page, ctx, token) {
        const source = new EventSource("/console/api/stream?page=" + encodeURIComponent(meta.name));
        state.source = source;
        setLive("connecting", "connecting");
        source.onopen = () => setLive("on", "live");
        for (const topic of meta.topics) {
            source.addEventListener(topic, (event) => {
                if (token !== state.nav || !page.onEvent) return;
                page.onEvent(ctx, topic, JSON.parse(event.data));
            });
        }
        source.addEventListener("expired", () => {
            source.close();
            showLogin("Your session has expired: sign in again.");
        });
        source.onerror = async () => {
            if (source.readyState !== EventSource.CLOSED) {
                setLive("connecting", "reconnecting");
                return;
            }
            setLive("off", "offline");
            try {
                const session = await api("GET", "/console/api/session");
                if (!session.signed_in) {
                    showLogin("Your session has ended: sign in again.");
                    return;
                }
            } catch (e) {
                // the gateway is away: try again below
            }
            if (token === state.nav) setTimeout(() => token === state.nav && openStream(meta, page, ctx, token), 3000);
        };
    }

    async function signIn(body) {
        const error = document.getElementById("login-error");
        error.hidden = true;
        try {
            const session = await api("POST", "/console/api/login", body);
            document.getElementById("admin-key").value = "";
            document.getElementById("login-password").value = "";
            showApp(session);
        } catch (e) {
            error.hidden = false;
            error.textContent = e.status === 429
                ? "Too many attempts: try again in " + (e.retryAfter || "a few") + " s."
                : e.message;
        }
    }

    async function signOut() {
        try {
            await api("POST", "/console/api/logout");
        } finally {
            location.hash = "";
            showLogin("Signed out.");
        }
    }

    async function boot() {
        document.getElementById("login-key").addEventListener("submit", (event) => {
            event.preventDefault();
            signIn({ admin_key: document.getElementById("admin-key").value });
        });
        document.getElementById("login-user").addEventListener("submit", (event) => {
            event.preventDefault();
            signIn({
                email: document.getElementById("login-email").value,
                password: document.getElementById("login-password").value,
            });
        });
        document.getElementById("logout").addEventListener("click", signOut);
        window.addEventListener("hashchange", navigate);
        try {
            const session = await api("GET", "/console/api/session");
            if (session.signed_in) showApp(session);
            else showLogin("");
        } catch (e) {
            showLogin(e.message);
        }
    }

    window.Console = {
        register(name, page) { pages.set(name, page); },
        el, api, time, seconds, table, boot,
        // A page's own operator actions (pages.py Page.actions).
        action(page, name, body) {
            return api("POST", "/console/api/pages/" + encodeURIComponent(page) + "/actions/"
                + encodeURIComponent(name), body || {});
        },
        refresh: navigate,
    };
})();
