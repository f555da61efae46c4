// FastWorker dashboard: live updates over server-sent events, cancel and retry.
// Plain JavaScript, no build step. The stream is read with fetch() so that a token
// (kept by the login page) goes in the Authorization header.
(function () {
  "use strict";
  var KEY = "fastworker-dashboard-token";
  var body = document.body;
  var MAX_ROWS = 100;
  var TERMINAL = { success: 1, failure: 1, cancelled: 1 };
  var last = null;

  // A statistic the page has no special place for: "name: count, ..." for a table of
  // counts ("none" when empty), JSON for anything else (the server renders the same).
  function extraText(v) {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      var keys = Object.keys(v).sort();
      if (!keys.length) { return "none"; }
      if (keys.every(function (k) { return typeof v[k] === "number"; })) {
        return keys.map(function (k) { return k + ": " + v[k]; }).join(", ").slice(0, 400);
      }
    }
    return typeof v === "object" ? JSON.stringify(v).slice(0, 400) : v;
  }

  function headers(extra) {
    var h = extra || {};
    var token = localStorage.getItem(KEY);
    if (token) { h.Authorization = "Bearer " + token; }
    return h;
  }

  function toast(html) {
    var t = document.getElementById("toast");
    t.innerHTML = html;
    t.style.display = "block";
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.style.display = "none"; }, 5000);
  }

  function text(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function when(ts) {
    if (!ts) { return ""; }
    var d = new Date(ts * 1000);
    return d.toTimeString().slice(0, 8);
  }

  function actions(t) {
    var id = text(t.id), out = "";
    if (!TERMINAL[t.status]) { out += "<button data-action='cancel' data-id='" + id + "'>Cancel</button>"; }
    if (t.status === "failure" || t.status === "cancelled") {
      out += "<button data-action='retry' data-id='" + id + "'>Retry</button>";
    }
    return out;
  }

  function rowHtml(t) {
    var why = t.error ? "<div class='why'>" + text(t.error.type) + ": " + text(String(t.error.message).slice(0, 160)) + "</div>" : "";
    return "<td class='id'><a href='/tasks/" + encodeURIComponent(t.id) + "'>" + text(t.id) + "</a></td>" +
      "<td>" + text(t.name) + why + "</td>" +
      "<td><span class='badge st-" + text(t.status) + "'>" + text(t.status) + "</span></td>" +
      "<td class='num'>" + t.attempts + "</td><td>" + text(t.worker || "") + "</td>" +
      "<td class='time'>" + when(t.updated_at) + "</td><td class='actions'>" + actions(t) + "</td>";
  }

  function matches(t) {
    var st = body.getAttribute("data-filter-status"), nm = body.getAttribute("data-filter-name");
    return (!st || t.status === st) && (!nm || t.name.indexOf(nm) >= 0);
  }

  function setStat(key, value) {
    var el = document.querySelector("[data-stat='" + key + "']");
    if (el && el.textContent !== String(value)) { el.textContent = value; }
  }

  function applyStats(s, at) {
    var slots = 0, busy = 0, queued = 0, p;
    s.workers.forEach(function (w) { slots += w.slots; busy += w.running; });
    for (p in s.queued) { queued += s.queued[p]; setStat("queued." + p, s.queued[p]); }
    setStat("workers", s.workers.length);
    setStat("slots", busy + " / " + slots);
    setStat("queued_total", queued);
    ["scheduled", "running", "completed", "failed", "retried"].forEach(function (k) { setStat(k, s[k]); });
    var done = s.completed + s.failed;
    if (last && at > last.at) { setStat("rate", Math.max(0, Math.round((done - last.done) / (at - last.at)))); }
    last = { at: at, done: done };
    document.querySelectorAll("[data-extra]").forEach(function (el) {
      var v = s[el.getAttribute("data-extra")];
      el.textContent = extraText(v);
    });
    var tbody = document.querySelector("#workers tbody");
    if (tbody) {
      tbody.innerHTML = s.workers.length ? s.workers.map(function (w) {
        return "<tr><td>" + text(w.id) + "</td><td class='num'>" + w.slots + "</td><td class='num'>" + w.running +
          "</td><td class='num'>" + w.free + "</td><td class='num'>" + w.completed + "</td></tr>";
      }).join("") : "<tr><td colspan='5' class='muted'>no worker connected</td></tr>";
    }
  }

  function applyTasks(tasks) {
    var tbody = document.querySelector("#tasks tbody");
    if (!tbody) { return; }
    // Oldest first, so the newest ends on top.
    for (var i = tasks.length - 1; i >= 0; i--) {
      var t = tasks[i];
      var row = tbody.querySelector("tr[data-id='" + (window.CSS ? CSS.escape(t.id) : t.id) + "']");
      if (!matches(t)) { if (row) { row.remove(); } continue; }
      if (!row) {
        row = document.createElement("tr");
        row.setAttribute("data-id", t.id);
        tbody.insertBefore(row, tbody.firstChild);
        row.className = "fresh";
      }
      if (row.getAttribute("data-status") !== t.status || !row.innerHTML) {
        row.setAttribute("data-status", t.status);
        row.setAttribute("data-name", t.name);
        row.innerHTML = rowHtml(t);
      }
    }
    while (tbody.rows.length > MAX_ROWS) { tbody.deleteRow(tbody.rows.length - 1); }
  }

  function refreshTaskPage() {
    fetch(location.href, { headers: headers({ Accept: "text/html" }) })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelector("main").innerHTML = doc.querySelector("main").innerHTML;
      });
  }

  function apply(update) {
    var taskId = body.getAttribute("data-task");
    if (taskId) {
      var status = document.getElementById("status");
      update.tasks.forEach(function (t) {
        if (t.id === taskId && status && status.textContent !== t.status) { refreshTaskPage(); }
      });
      return;
    }
    applyStats(update.stats, update.at);
    applyTasks(update.tasks);
    var ring = document.getElementById("ring-entries");
    if (ring && update.ring) { ring.textContent = update.ring.entries.toLocaleString("en"); }
  }

  function live(on) {
    var el = document.getElementById("live");
    el.className = "live " + (on ? "on" : "off");
    el.textContent = on ? "live" : "reconnecting";
  }

  function connect() {
    var since = body.getAttribute("data-since") || "0";
    fetch("/ui/stream?since=" + encodeURIComponent(since), { headers: headers({ Accept: "text/event-stream" }) })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        live(true);
        var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) { throw new Error("stream ended"); }
            buffer += decoder.decode(chunk.value, { stream: true });
            var cut;
            while ((cut = buffer.indexOf("\n\n")) >= 0) {
              var message = buffer.slice(0, cut);
              buffer = buffer.slice(cut + 2);
              message.split("\n").forEach(function (line) {
                if (line.indexOf("data: ") === 0) { apply(JSON.parse(line.slice(6))); }
              });
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function () { live(false); setTimeout(connect, 2000); });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) { return; }
    var id = button.getAttribute("data-id"), action = button.getAttribute("data-action");
    var url = "/api/v1/tasks/" + encodeURIComponent(id) + (action === "retry" ? "/retry" : "");
    button.disabled = true;
    fetch(url, { method: action === "retry" ? "POST" : "DELETE", headers: headers({ "Content-Type": "application/json" }) })
      .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, data: data }; }); })
      .then(function (res) {
        if (!res.ok) { toast(text(res.data.error.message)); button.disabled = false; return; }
        if (action === "retry") {
          toast("retried as <a href='/tasks/" + encodeURIComponent(res.data.id) + "'>" + text(res.data.id) + "</a>");
        } else {
          toast(res.data.cancelled ? "cancel requested: " + text(id) : "already finished: " + text(id));
        }
        if (body.getAttribute("data-task")) { refreshTaskPage(); }
      })
      .catch(function (err) { toast(text(err.message)); button.disabled = false; });
  });

  connect();
})();
