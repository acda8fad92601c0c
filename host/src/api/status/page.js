// The status page's live parts: a tail of /api/v1/decisions (polled with
// the last id it has, filtered by the form) and the figures, re-read from
// the page itself every 5 s. Plain JavaScript, no build step.
"use strict";
(function () {
  var POLL_MS = 300, FIGURES_MS = 5000, KEEP = 200;
  var form = document.getElementById("filter");
  var body = document.querySelector("#decisions tbody");
  var status = document.getElementById("tail-status");
  var last = 0, generation = 0;

  function query() {
    var q = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && el.value) q.set(el.name, el.value);
    });
    return q;
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function row(d) {
    var tr = document.createElement("tr");
    tr.dataset.id = d.id;
    tr.dataset.uid = d.uid;
    tr.dataset.fate = d.fate;
    cell(tr, d.id, "num");
    cell(tr, d.time.replace("T", " ").replace("Z", ""));
    cell(tr, d.fate, "fate-" + d.fate);
    cell(tr, d.step);
    cell(tr, d.kind + " " + (d.namespace ? d.namespace + "/" : "") + d.name);
    cell(tr, d.change);
    cell(tr, (d.plugins || []).map(function (p) {
      var s = p.plugin + ": " + p.verdict + (p.reason ? " (" + p.reason + ")" : "");
      if (p.removed) s += " −" + p.removed.join(" −");
      if (p.set) s += " ±" + p.set.join(" ±");
      return s + " " + p.micros + "µs";
    }).join("; "));
    cell(tr, (d.sinks || []).map(function (s) {
      return s.sink + ": " + s.state + (s.attempts > 1 ? " ×" + s.attempts : "");
    }).concat((d.leftOut || []).map(function (l) {
      return l.sink + ": left out";
    })).join("; "));
    cell(tr, d.reason);
    return tr;
  }

  function poll() {
    var mine = generation;
    var q = query();
    q.set("after", String(last));
    q.set("limit", "100");
    fetch("api/v1/decisions?" + q.toString(), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        return r.json().then(function (j) {
          if (!r.ok) throw new Error((j.error && j.error.message) || r.status);
          return j;
        });
      })
      .then(function (j) {
        if (mine !== generation) return;
        // Newest first: the oldest new one goes in first, on top.
        j.items.slice().reverse().forEach(function (d) {
          body.insertBefore(row(d), body.firstChild);
          if (d.id > last) last = d.id;
        });
        while (body.rows.length > KEEP) body.deleteRow(body.rows.length - 1);
        status.textContent = j.kept + " kept";
      })
      .catch(function (e) { status.textContent = "decisions: " + e.message; })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  function refilter() {
    generation += 1;
    last = 0;
    while (body.rows.length) body.deleteRow(0);
  }

  function figures() {
    fetch(location.pathname, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("figures");
        if (fresh) document.getElementById("figures").innerHTML = fresh.innerHTML;
        var at = doc.getElementById("rendered");
        if (at) document.getElementById("rendered").textContent = at.textContent;
      })
      .catch(function () {})
      .then(function () { setTimeout(figures, FIGURES_MS); });
  }

  form.addEventListener("input", refilter);
  poll();
  setTimeout(figures, FIGURES_MS);
})();
