// The dashboard's live updates. Every data-refresh milliseconds the page
// asks its own URL for the Snapshot as JSON (format=json), keeps a sample
// of it (the last 10 minutes of them, in this page only) and draws them;
// it also fetches itself as HTML (format=html) and swaps in the elements
// marked data-swap, so that its numbers and tables are the ones the server
// renders without JavaScript. It uses no library and loads nothing else:
// the page's Content-Security-Policy lets this script run by its hash and
// connect only to the page's origin. Every name and target goes into the
// page as text, never as markup.
(function () {
  "use strict";

  var every = Number(document.body.getAttribute("data-refresh")) || 0;
  if (!(every > 0)) {
    return;
  }
  var KEEP = 10 * 60 * 1000; // the history kept and drawn, at most
  var MAX_SAMPLES = 3600;
  var MAX_LANES = 16; // exits drawn
  var MAX_BARS = 16; // blocks drawn
  var SVG = "http://www.w3.org/2000/svg";
  var W = 560; // the charts' width, in the units of their viewBox
  var L = 46, R = 12, T = 10, B = 22; // margins of the time charts
  var H = 170;

  var everyText = every < 1000 ? every + "ms" : every / 1000 + "s";
  var charts = document.getElementById("charts");
  var live = document.getElementById("live");
  var ring = []; // samples, oldest first
  var snap = null; // the latest Snapshot

  function urlOf(format) {
    var u = new URL(location.href);
    u.searchParams.set("format", format);
    u.hash = "";
    return u.toString();
  }
  var jsonURL = urlOf("json");
  var htmlURL = urlOf("html");

  // Times are RFC 3339 with up to nine decimals.
  function parseTime(s) {
    var t = Date.parse(s || "");
    return isNaN(t) ? 0 : t;
  }

  function sampleOf(s) {
    var t = s.Total || {};
    var exits = {};
    Object.keys(s.Exits || {}).forEach(function (name) {
      var e = s.Exits[name];
      exits[name] = { ok: !!e.Healthy, ejections: e.Ejections || 0 };
    });
    return {
      t: parseTime(s.Taken), requests: t.Requests || 0, cold: t.Cold || 0, reused: t.Reused || 0,
      handshakes: t.Handshakes || 0, tax: t.HandshakeTax || 0, keepAlive: t.KeepAliveRatio || 0,
      exits: exits
    };
  }

  function push(s) {
    var prev = ring[ring.length - 1];
    if (prev && s.t <= prev.t) {
      return;
    }
    if (prev && s.requests < prev.requests) {
      ring = []; // counters went back: another Transport answers now
    }
    ring.push(s);
    while (ring.length > MAX_SAMPLES || s.t - ring[0].t > KEEP) {
      ring.shift();
    }
  }

  // intervals returns, for each pair of consecutive samples, the rates and
  // counts between them.
  function intervals() {
    var out = [];
    for (var i = 1; i < ring.length; i++) {
      var a = ring[i - 1], b = ring[i];
      var secs = (b.t - a.t) / 1000;
      var n = b.requests - a.requests;
      out.push({
        t0: a.t, t: b.t,
        rps: n / secs, hps: (b.handshakes - a.handshakes) / secs,
        cold: b.cold - a.cold, tax: b.tax - a.tax,
        keepAlive: n > 0 ? (b.reused - a.reused) / n : null
      });
    }
    return out;
  }

  // Formatting.

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }
  function clock(t) {
    var d = new Date(t);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function secs(ms) { // a duration to the second: 45s, 2m05s, 1h02m
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) {
      return s + "s";
    }
    if (s < 3600) {
      return Math.floor(s / 60) + "m" + pad(s % 60) + "s";
    }
    return Math.floor(s / 3600) + "h" + pad(Math.floor(s / 60) % 60) + "m";
  }
  function dur(ns) { // a Go duration in nanoseconds
    if (ns < 1e6) {
      return Math.round(ns / 1e3) + "µs";
    }
    if (ns < 1e9) {
      return (ns / 1e6).toFixed(ns < 1e7 ? 2 : 1) + "ms";
    }
    if (ns < 60e9) {
      return (ns / 1e9).toFixed(2) + "s";
    }
    return secs(ns / 1e6);
  }
  function num(v) {
    if (v >= 100 || v === 0) {
      return String(Math.round(v));
    }
    return String(Number(v.toPrecision(v >= 10 ? 3 : 2)));
  }
  function pct(v) {
    return (100 * v).toFixed(1) + "%";
  }
  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }
  function clip(s, n) {
    return s.length > n ? s.slice(0, n - 1) + "…" : s;
  }
  function niceCeil(v) {
    if (!(v > 0)) {
      return 1;
    }
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * p >= v) {
        return steps[i] * p;
      }
    }
    return 10 * p;
  }

  // Drawing.

  function el(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) {
      e.setAttribute(k, attrs[k]);
    });
    if (parent) {
      parent.appendChild(e);
    }
    return e;
  }
  function text(parent, x, y, s, attrs) {
    var e = el("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    e.textContent = s;
    return e;
  }
  function reset(svg, height) {
    while (svg.firstChild) {
      svg.removeChild(svg.firstChild);
    }
    svg.setAttribute("viewBox", "0 0 " + W + " " + height);
  }
  function setText(id, s) {
    document.getElementById(id).textContent = s;
  }

  // timeAxis maps the time of the samples kept to x, from left to right,
  // over at least a minute.
  function timeAxis(left, right) {
    var end = ring[ring.length - 1].t;
    var span = Math.min(KEEP, Math.max(60000, end - ring[0].t));
    var x = function (t) {
      return left + (right - left) * (t - (end - span)) / span;
    };
    return { end: end, span: span, x: x };
  }

  function timeTicks(svg, ax, top, bottom) {
    var step = ax.span <= 120000 ? 30000 : ax.span <= 300000 ? 60000 : 120000;
    for (var back = 0; back <= ax.span; back += step) {
      var x = ax.x(ax.end - back);
      el("line", { x1: x, x2: x, y1: top, y2: bottom, "class": "grid" }, svg);
      var label = back === 0 ? "now" : "−" + (back % 60000 ? secs(back) : back / 60000 + "m");
      text(svg, x, bottom + 14, label, { "text-anchor": back === 0 ? "end" : "middle" });
    }
  }

  // timeChart draws series of {t, v} points (v null for none) over time,
  // as lines or bars, on a scale from 0 to yMax (labelled by yFmt) or, for
  // series marked right, on a second scale on the right (right.yMax,
  // right.fmt), and returns the points drawn.
  function timeChart(svg, series, yMax, yFmt, right) {
    reset(svg, H);
    var r = right ? 46 : R;
    var ax = timeAxis(L, W - r);
    var scale = function (top) {
      return function (v) {
        return H - B - (H - B - T) * Math.min(v, top) / top;
      };
    };
    var y = scale(yMax), y2 = right ? scale(right.yMax) : null;
    [0, 0.5, 1].forEach(function (f) {
      el("line", { x1: L, x2: W - r, y1: y(f * yMax), y2: y(f * yMax), "class": f === 0 ? "axis" : "grid" }, svg);
      text(svg, L - 5, y(f * yMax) + 4, yFmt(f * yMax), { "text-anchor": "end" });
      if (right) {
        text(svg, W - r + 5, y2(f * right.yMax) + 4, right.fmt(f * right.yMax), { "class": right.cls });
      }
    });
    timeTicks(svg, ax, T, H - B);
    var drawn = 0;
    series.forEach(function (s) {
      var y = s.right ? y2 : scale(yMax);
      if (s.bars) {
        s.points.forEach(function (p) {
          if (p.v === null || p.v <= 0) {
            return;
          }
          var x0 = Math.max(L, ax.x(p.t0)), x1 = ax.x(p.t);
          el("rect", { x: x0 + 0.5, y: y(p.v), width: Math.max(1, x1 - x0 - 1), height: H - B - y(p.v), "class": s.cls }, svg);
          drawn++;
        });
        return;
      }
      var d = "", pen = "M";
      s.points.forEach(function (p) {
        if (p.v === null) {
          pen = "M";
          return;
        }
        d += pen + ax.x(p.t).toFixed(1) + " " + y(p.v).toFixed(1) + " ";
        pen = "L";
        drawn++;
      });
      if (d) {
        el("path", { d: d, "class": "line " + s.cls + (s.dashed ? " dashed" : "") }, svg);
      }
      if (s.points.length <= 60) {
        s.points.forEach(function (p) {
          if (p.v !== null) {
            el("circle", { cx: ax.x(p.t), cy: y(p.v), r: 2, "class": s.cls }, svg);
          }
        });
      }
    });
    svg.setAttribute("data-points", drawn);
    return drawn;
  }

  function drawKeepAlive(iv) {
    timeChart(document.getElementById("chart-keepalive"), [
      { cls: "c-ka-all", dashed: true, points: ring.map(function (s) { return { t: s.t, v: s.requests ? s.keepAlive : null }; }) },
      { cls: "c-ka", points: iv.map(function (p) { return { t: p.t, v: p.keepAlive }; }) }
    ], 1, function (v) { return Math.round(100 * v) + "%"; });
    var now = iv.length ? iv[iv.length - 1].keepAlive : null;
    setText("keepalive-now", (now === null ? "" : pct(now) + " in the last interval · ") +
      pct(ring[ring.length - 1].keepAlive) + " since the start");
  }

  function drawRates(iv) {
    // Handshakes are few next to requests where keep-alive works: they
    // get their own scale, on the right.
    var rTop = 0, hTop = 0;
    iv.forEach(function (p) {
      rTop = Math.max(rTop, p.rps);
      hTop = Math.max(hTop, p.hps);
    });
    timeChart(document.getElementById("chart-rate"), [
      { cls: "c-hs", right: true, points: iv.map(function (p) { return { t: p.t, v: p.hps }; }) },
      { cls: "c-req", points: iv.map(function (p) { return { t: p.t, v: p.rps }; }) }
    ], niceCeil(rTop), num, { yMax: niceCeil(hTop), fmt: num, cls: "c-hs" });
    var last = iv[iv.length - 1];
    setText("rate-now", last ? num(last.rps) + " requests/s · " + num(last.hps) + " handshakes/s now" : "");
  }

  function drawCold(iv) {
    var top = 0, cold = 0, tax = 0;
    var end = ring[ring.length - 1].t;
    iv.forEach(function (p) {
      top = Math.max(top, p.cold);
      if (p.t > end - 60000) {
        cold += p.cold;
        tax += p.tax;
      }
    });
    timeChart(document.getElementById("chart-cold"), [
      { cls: "c-cold", bars: true, points: iv.map(function (p) { return { t0: p.t0, t: p.t, v: p.cold }; }) }
    ], niceCeil(top), num);
    setText("cold-now", cold ? plural(cold, "cold request") + " and " + dur(tax) + " of handshake tax in the last minute" :
      "none in the last minute");
  }

  // drawExits draws a lane per exit: healthy or ejected at each sample,
  // with a mark at each ejection, and its state now.
  function drawExits() {
    var svg = document.getElementById("chart-exits");
    var names = Object.keys(snap.Exits || {}).sort();
    var shown = names.slice(0, MAX_LANES);
    var lane = 22, left = 150, right = 340;
    var more = names.length > shown.length ? 16 : 0; // a line to say so
    var height = T + lane * shown.length + B + more;
    reset(svg, height);
    var ax = timeAxis(left, right);
    timeTicks(svg, ax, T, height - B - more);
    var taken = parseTime(snap.Taken), drawn = 0, ejected = 0;
    shown.forEach(function (name, i) {
      var top = T + lane * i + 4, h = lane - 8;
      text(svg, left - 6, top + h - 3, clip(name, 24), { "text-anchor": "end", "class": "label name" });
      for (var k = 0; k < ring.length; k++) {
        var e = ring[k].exits[name];
        if (!e) {
          continue;
        }
        var x0 = Math.max(left, ax.x(ring[k].t));
        var x1 = k + 1 < ring.length ? ax.x(ring[k + 1].t) : x0 + 3;
        // Overlapping by half a unit: no seam between samples.
        el("rect", { x: x0, y: top, width: Math.max(1, x1 - x0 + 0.5), height: h, "class": e.ok ? "c-ok" : "c-bad" }, svg);
        drawn++;
        var prev = k > 0 ? ring[k - 1].exits[name] : null;
        if (prev && e.ejections > prev.ejections) {
          var x = ax.x(ring[k].t);
          el("path", { d: "M" + (x - 4) + " " + (top - 4) + " h8 l-4 6 z", "class": "c-bad" }, svg);
        }
      }
      var es = snap.Exits[name];
      var state = "healthy";
      if (!es.Healthy) {
        ejected++;
        var until = parseTime(es.EjectedUntil);
        state = "ejected" + (until > taken ? " until " + clock(until) : "");
      }
      text(svg, right + 8, top + h - 3, state + " · " + plural(es.Ejections || 0, "ejection"),
        { "class": es.Healthy ? "" : "label" });
    });
    if (names.length > shown.length) {
      text(svg, left, height - 4, "and " + (names.length - shown.length) + " more exits in the table below");
    }
    svg.setAttribute("data-points", drawn);
    setText("exits-now", ejected ? ejected + " of " + plural(names.length, "exit") + " ejected now" :
      "all " + plural(names.length, "exit") + " healthy");
  }

  // drawBlocks draws a bar per exit and target with blocks, grouped by
  // target: those the target's requests avoid now first.
  function drawBlocks() {
    var svg = document.getElementById("chart-blocks");
    var taken = parseTime(snap.Taken);
    var blocks = (snap.Blocks || []).map(function (b) {
      return { b: b, until: parseTime(b.AvoidedUntil) };
    });
    var avoided = blocks.filter(function (x) { return x.until > taken; }).length;
    blocks.sort(function (p, q) {
      return (q.until > taken) - (p.until > taken) || q.b.Blocks - p.b.Blocks;
    });
    var shown = blocks.slice(0, MAX_BARS);
    shown.sort(function (p, q) {
      return p.b.Target < q.b.Target ? -1 : p.b.Target > q.b.Target ? 1 : p.b.Exit < q.b.Exit ? -1 : p.b.Exit > q.b.Exit ? 1 : 0;
    });
    var row = 20, left = 230, right = 330, top = 0;
    shown.forEach(function (x) {
      top = Math.max(top, x.b.Blocks);
    });
    var height = shown.length ? T + row * shown.length + 8 : 40;
    reset(svg, height);
    if (!shown.length) {
      text(svg, 12, 24, "No target has blocked an exit.");
    }
    shown.forEach(function (x, i) {
      var y = T + row * i, b = x.b;
      var first = i === 0 || shown[i - 1].b.Target !== b.Target;
      if (first) {
        text(svg, 8, y + 13, clip(b.Target, 28), { "class": "label" });
      }
      text(svg, left - 6, y + 13, clip(b.Exit, 14), { "text-anchor": "end" });
      var w = (right - left) * b.Blocks / niceCeil(top);
      el("rect", { x: left, y: y + 3, width: Math.max(1, w), height: row - 7, "class": x.until > taken ? "c-bad" : "c-block" }, svg);
      text(svg, right + 8, y + 13, plural(b.Blocks, "block") +
        (x.until > taken ? " · avoided " + secs(x.until - taken) : "") + " · " + plural(b.Avoidances || 0, "avoidance"),
        { "class": x.until > taken ? "label" : "" });
    });
    svg.setAttribute("data-points", shown.length);
    setText("blocks-now", blocks.length ? avoided + " of " + blocks.length + " avoided now" +
      (blocks.length > shown.length ? "; the table below has them all" : "") : "");
  }

  function draw() {
    var iv = intervals();
    drawKeepAlive(iv);
    drawRates(iv);
    drawCold(iv);
    drawExits();
    drawBlocks();
    charts.setAttribute("data-samples", ring.length);
    charts.setAttribute("data-requests", ring[ring.length - 1].requests);
  }

  // swap replaces the elements marked data-swap with those of the page
  // just fetched (parsed, never run: DOMParser runs no script).
  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    document.querySelectorAll("[data-swap]").forEach(function (old) {
      var fresh = doc.getElementById(old.id);
      if (fresh) {
        old.replaceWith(document.adoptNode(fresh));
      }
    });
    if (doc.title) {
      document.title = doc.title;
    }
  }

  function get(url, type) {
    return fetch(url, { headers: { Accept: type }, cache: "no-store", credentials: "same-origin" }).then(function (r) {
      if (!r.ok) {
        throw new Error("HTTP " + r.status);
      }
      return type === "application/json" ? r.json() : r.text();
    });
  }

  function status(s, stale) {
    live.textContent = s;
    live.className = stale ? "muted stale" : "muted";
  }

  // tick updates the page, then schedules the next update: one at a time,
  // however slow the server. A failed fetch shows on the page and the next
  // tick tries again; an error of this script is not caught.
  function tick() {
    Promise.all([get(jsonURL, "application/json"), get(htmlURL, "text/html")]).then(function (res) {
      snap = res[0].snapshot;
      push(sampleOf(snap));
      swap(res[1]);
      draw();
      var span = ring[ring.length - 1].t - ring[0].t;
      status("Live: updated " + clock(Date.now()) + ", every " + everyText +
        " · " + plural(ring.length, "sample") + " over " + secs(span) + " kept in this page (up to 10 minutes)");
    }, function (err) {
      status("Update failed at " + clock(Date.now()) + " (" + err.message + "); trying again every " +
        everyText + ". The numbers below are from the last update.", true);
    }).finally(function () {
      setTimeout(tick, every);
    });
  }

  charts.hidden = false;
  live.hidden = false;
  status("Live: loading…");
  tick();
})();
