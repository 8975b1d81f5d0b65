/* agent-evals HTML report: the case explorer.
   Case data is untrusted (model outputs, case ids, prompts): it reaches the page through
   textContent, text nodes and setAttribute only, never innerHTML. */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE = DATA.pageRows;
  var FILTER_HELP = {
    all: "every case",
    regressed: "passed in the baseline, fails in the candidate",
    truncated: "an output was cut off at max_tokens (a pass → fail on a cut-off output is listed here, not as regressed)",
    fixed: "failed in the baseline, passes in the candidate",
    failing: "the candidate fails",
    errors: "a run could not be judged (provider or grader error)",
    review: "a candidate grade waits for a person",
    trajectory: "the candidate calls tools differently, or makes more or fewer model calls",
  };

  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "class") node.className = value;
        else node.setAttribute(key, value === true ? "" : String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }

  function add(node, kid) {
    if (kid === null || kid === undefined || kid === false) return;
    if (Array.isArray(kid)) kid.forEach(function (k) { add(node, k); });
    else node.append(kid); // a string becomes a text node: never parsed as HTML
  }

  function plural(n, word) { return n.toLocaleString("en") + " " + word + (n === 1 ? "" : "s"); }

  function outputText(c) {
    if (c.diff) {
      return c.diff.map(function (op) { return op[1]; }).join("");
    }
    return [c.base, c.cand].map(function (s) { return s && s.output ? s.output : ""; }).join("\n");
  }

  function haystack(c) {
    if (c._hay === undefined) {
      c._hay = [c.id, c.tags.join(" "), outputText(c)].join("\n").toLowerCase();
    }
    return c._hay;
  }

  function verdictBadge(side) {
    if (!side) return el("span", { class: "badge absent" }, "—");
    return el("span", { class: "badge " + side.verdict }, side.status);
  }

  function opsInto(pre, ops, keep) {
    // keep: which changed segments this view shows ("-" for the old text, "+" for the new, both inline)
    ops.forEach(function (op) {
      var kind = op[0], text = op[1];
      if (kind === "=") pre.append(text);
      else if (kind === "-" && keep.indexOf("-") >= 0) pre.append(el("del", { title: "only in the baseline" }, text));
      else if (kind === "+" && keep.indexOf("+") >= 0) pre.append(el("ins", { title: "only in the candidate" }, text));
    });
    return pre;
  }

  function section(title) {
    var box = el("div", { class: "dsec" }, el("h4", null, title));
    for (var i = 1; i < arguments.length; i++) add(box, arguments[i]);
    return box;
  }

  function cutNote(side, label) {
    return side && side.cut ? el("p", { class: "diffkey" }, label + " truncated: " + side.cut.toLocaleString("en") + " more characters not shown") : null;
  }

  function changes(c) {
    // The JSON fields that differ, one per line: path: old → new (as in the PR comment).
    if (!c.changes || !c.changes.length) return null;
    var items = c.changes.map(function (ch) {
      var kind = ch[0], path = ch[1], old = ch[2], now = ch[3];
      var li = el("li", null, el("code", null, path), ": ");
      if (kind === "added") add(li, ["added ", el("ins", null, now)]);
      else if (kind === "removed") add(li, ["removed (was ", el("del", null, old), ")"]);
      else add(li, [el("del", null, old), " → ", el("ins", null, now)]);
      return li;
    });
    if (c.more_changes) items.push(el("li", null, "… and " + plural(c.more_changes, "more changed field")));
    return section("Changed fields", el("ul", { class: "changes" }, items));
  }

  function trajectory(c, pair) {
    // How the calls changed (the PR comment's sentences), then the calls of both runs.
    var t = c.trajectory;
    if (!t) return null;
    var box = [];
    if (t.sentences.length) {
      box.push(el("ul", { class: "moves" }, t.sentences.map(function (parts) {
        return el("li", null, parts.map(function (part, i) { return i % 2 ? el("code", null, part) : part; }));
      })));
    } else {
      box.push(el("p", { class: "hint" }, "The same calls on both sides."));
    }
    function list(name, calls) {
      return el("div", null,
        el("div", { class: "diffkey" }, name + " (" + plural(calls.length, "tool call") + ")"),
        calls.length
          ? el("ol", { class: "calls" }, calls.map(function (call) {
              return el("li", null, el("code", null, call[0]), " ", el("span", { class: "args" }, call[1]));
            }))
          : el("p", { class: "hint" }, "(no tool call)"));
    }
    box.push(el("div", { class: "outputs" }, pair.paired ? list("baseline", t.base) : null, list(pair.paired ? "candidate" : "run", t.cand)));
    return section("Trajectory", box);
  }

  function outputs(c, pair) {
    if (c.diff) {
      var changed = c.diff.some(function (op) { return op[0] !== "="; });
      var left = opsInto(el("pre", { class: "text out-base" }), c.diff, "-");
      var right = opsInto(el("pre", { class: "text out-cand" }), c.diff, "+");
      return section(
        "Outputs",
        el("div", { class: "outputs" },
          el("div", null, el("div", { class: "diffkey" }, "baseline (repeat " + (c.base.repeat + 1) + ")"), left, cutNote(c.base, "baseline output")),
          el("div", null, el("div", { class: "diffkey" }, "candidate (repeat " + (c.cand.repeat + 1) + ")"), right, cutNote(c.cand, "candidate output"))),
        el("p", { class: "diffkey" }, changed
          ? "Word-level diff: words only in the baseline are struck through in red on the left; words only in the candidate are green on the right."
          : "The two outputs are identical.")
      );
    }
    var cols = [];
    [["baseline", c.base], [pair.paired ? "candidate" : "output", c.cand]].forEach(function (pairSide) {
      var name = pairSide[0], side = pairSide[1];
      if (!side) return;
      cols.push(el("div", null,
        el("div", { class: "diffkey" }, name),
        side.output === null ? el("p", { class: "hint" }, "(no output)") : el("pre", { class: "text" }, side.output),
        cutNote(side, name + " output")));
    });
    return section("Output", el("div", { class: "outputs" + (cols.length === 1 ? " single" : "") }, cols));
  }

  function gradeCell(g) {
    if (!g) return el("td", null, "—");
    var state = g.passed === true ? "pass" : g.passed === false ? "fail" : "error";
    var mark = { pass: "✓", fail: "✗", error: "!" }[state];
    return el("td", null,
      el("span", { class: "gmark " + state, "aria-label": state }, mark),
      el("span", { class: "gscore" }, g.score),
      g.review ? el("span", { class: "badge review" }, "needs review") : null,
      " ", g.reason);
  }

  function grades(c, pair) {
    var names = [];
    var by = { base: {}, cand: {} };
    ["base", "cand"].forEach(function (key) {
      var side = c[key];
      if (!side) return;
      side.grades.forEach(function (g) {
        if (names.indexOf(g.grader) < 0) names.push(g.grader);
        by[key][g.grader] = g;
      });
    });
    if (!names.length) return null;
    var head = pair.paired
      ? el("tr", null, el("th", null, "grader"), el("th", null, "baseline"), el("th", null, "candidate"))
      : el("tr", null, el("th", null, "grader"), el("th", null, "result"));
    var rows = names.map(function (name) {
      var g = by.cand[name] || by.base[name];
      var label = el("td", null, el("code", null, name), g ? el("div", { class: "hint" }, g.type) : null);
      return pair.paired
        ? el("tr", null, label, gradeCell(by.base[name]), gradeCell(by.cand[name]))
        : el("tr", null, label, gradeCell(by.cand[name]));
    });
    return section("Graders", el("table", { class: "grades" }, el("thead", null, head), el("tbody", null, rows)));
  }

  function prompt(c, pair) {
    var main = c.cand || c.base;
    var msgs = main.messages || [];
    var old = c.cand && c.base ? c.base.messages : null; // only present when it differs
    if (!msgs.length && !(old && old.length)) return null;
    var box = el("details", { class: "prompt" },
      el("summary", null, "Rendered prompt: " + plural(msgs.length, "message") +
        (old ? " (differs from the baseline's: changes marked)" : "")));
    msgs.forEach(function (m, i) {
      var pre = el("pre", { class: "text" });
      var was = old ? old[i] : null;
      if (old && !was) pre.append(el("ins", null, pair.strings[m[1]]));
      else if (old && was[1] !== m[1]) opsInto(pre, pair.promptDiffs[was[1] + ":" + m[1]] || [["+", pair.strings[m[1]]]], "-+");
      else pre.append(pair.strings[m[1]]);
      box.append(el("div", { class: "msg" }, el("div", { class: "role" }, m[0]), pre));
    });
    if (old) {
      old.slice(msgs.length).forEach(function (m) {
        box.append(el("div", { class: "msg" }, el("div", { class: "role" }, m[0] + " (baseline only)"),
          el("pre", { class: "text" }, el("del", null, pair.strings[m[1]]))));
      });
    }
    return section("Prompt", box);
  }

  function detail(c, pair) {
    var box = el("div", { class: "detail-body" });
    var meta = [];
    if (c.tags.length) meta.push("tags: " + c.tags.join(", "));
    if (c.cluster) meta.push("cluster: " + c.cluster);
    [["baseline", c.base], [pair.paired ? "candidate" : "run", c.cand]].forEach(function (x) {
      var side = x[1];
      if (!side) return;
      meta.push(x[0] + ": " + side.status + ", score " + side.score + ", latency " + side.latency + ", cost " + side.cost +
        (side.repeats > 1 ? " (showing repeat " + (side.repeat + 1) + " of " + side.repeats + ")" : ""));
    });
    box.append(el("ul", { class: "meta" }, meta.map(function (m) { return el("li", null, m); })));
    if (c.review.length) {
      box.append(el("div", { class: "callout review" }, el("strong", null, "Needs human review"),
        el("ul", null, c.review.map(function (r) { return el("li", null, el("code", null, r[0]), ": ", r[1]); }))));
    }
    [["baseline", c.base], ["candidate", c.cand]].forEach(function (x) {
      if (x[1] && x[1].error) box.append(el("div", { class: "callout err" }, el("strong", null, x[0] + " error: "), x[1].error));
      if (x[1] && x[1].truncated) box.append(el("div", { class: "callout warn" }, el("strong", null, "✂ " + x[0] + " " + x[1].truncated), " (raise max_tokens if the answer needs more room)"));
    });
    if (c.expected !== null) box.append(section("Expected", el("pre", { class: "text" }, c.expected)));
    add(box, changes(c));
    add(box, trajectory(c, pair));
    box.append(outputs(c, pair));
    add(box, grades(c, pair));
    add(box, prompt(c, pair));
    return box;
  }

  function Explorer(root, pair) {
    this.root = root;
    this.pair = pair;
    this.filter = "all";
    this.tag = "";
    this.query = "";
    this.limit = PAGE;
    this.open = new Set();
    this.search = root.querySelector("input.search");
    this.tagSelect = root.querySelector("select.tag-filter");
    this.buttons = Array.prototype.slice.call(root.querySelectorAll("button[data-filter]"));
    this.tbody = root.querySelector("tbody");
    this.status = root.querySelector(".case-status");
    this.more = root.querySelector("button.more");
    this.columns = root.querySelectorAll("thead th").length;
    var self = this;
    this.buttons.forEach(function (b) {
      b.title = FILTER_HELP[b.dataset.filter] || "";
      b.addEventListener("click", function () { self.setFilter(b.dataset.filter); });
    });
    this.search.addEventListener("input", function () {
      self.query = self.search.value.trim().toLowerCase();
      self.limit = PAGE;
      self.update();
    });
    if (this.tagSelect) {
      this.tagSelect.addEventListener("change", function () {
        self.tag = self.tagSelect.value;
        self.limit = PAGE;
        self.update();
      });
    }
    this.more.addEventListener("click", function () { self.limit += PAGE; self.update(); });
    this.tbody.addEventListener("click", function (event) {
      var row = event.target.closest("tr.case-row");
      if (row && self.tbody.contains(row)) self.toggle(row);
    });
    this.update();
  }

  Explorer.prototype.setFilter = function (name) {
    this.filter = name;
    this.limit = PAGE;
    this.update();
  };

  Explorer.prototype.passes = function (c, filter) {
    return filter === "all" || c.flags.indexOf(filter) >= 0;
  };

  Explorer.prototype.update = function () {
    var self = this;
    var q = this.query;
    var pool = this.pair.cases.filter(function (c) {
      return (!self.tag || c.tags.indexOf(self.tag) >= 0) && (!q || haystack(c).indexOf(q) >= 0);
    });
    this.buttons.forEach(function (b) {
      var f = b.dataset.filter;
      var n = f === "all" ? pool.length : pool.filter(function (c) { return self.passes(c, f); }).length;
      b.querySelector(".count").textContent = n.toLocaleString("en");
      b.setAttribute("aria-pressed", String(f === self.filter));
    });
    var rows = pool.filter(function (c) { return self.passes(c, self.filter); });
    var shown = rows.slice(0, this.limit);
    var body = document.createDocumentFragment();
    shown.forEach(function (c) {
      var open = self.open.has(c.id);
      body.append(self.row(c, open));
      if (open) body.append(self.detailRow(c));
    });
    if (!rows.length) {
      body.append(el("tr", { class: "empty-row" }, el("td", { colspan: this.columns }, "No case matches.")));
    }
    this.tbody.replaceChildren(body);
    var total = this.pair.cases.length;
    this.status.textContent = rows.length.toLocaleString("en") + " of " + plural(total, "case") +
      (rows.length > shown.length ? " · showing the first " + shown.length.toLocaleString("en") : "");
    var rest = rows.length - shown.length;
    this.more.hidden = rest <= 0;
    this.more.textContent = "Show " + Math.min(PAGE, rest).toLocaleString("en") + " more (" + rest.toLocaleString("en") + " not shown)";
  };

  Explorer.prototype.row = function (c, open) {
    var tr = el("tr", { class: "case-row o-" + c.outcome + (open ? " open" : ""), "data-case-id": c.id });
    tr.append(el("td", { class: "tog" }, el("button", {
      type: "button", class: "toggle", "aria-expanded": String(open), "aria-label": "Details of case " + c.id,
    }, open ? "▾" : "▸")));
    tr.append(el("td", null, el("div", { class: "cid" }, c.id),
      c.tags.map(function (t) { return el("span", { class: "tag" }, t); }),
      c.flags.indexOf("review") >= 0 ? el("span", { class: "badge review" }, "needs review") : null,
      c.flags.indexOf("truncated") >= 0 && c.outcome !== "truncated" ? el("span", { class: "badge cut" }, "output cut off") : null));
    var s = function (side) { return side ? side.score : "—"; };
    if (this.pair.paired) {
      tr.append(el("td", null, el("span", { class: "badge " + c.outcome }, c.outcome_word)));
      tr.append(el("td", null, verdictBadge(c.base)));
      tr.append(el("td", null, verdictBadge(c.cand)));
      tr.append(el("td", { class: "score" }, s(c.base) + " → " + s(c.cand)));
    } else {
      tr.append(el("td", null, verdictBadge(c.cand)));
      tr.append(el("td", { class: "score" }, s(c.cand)));
    }
    tr.append(el("td", { class: "why", title: c.why }, c.why));
    return tr;
  };

  Explorer.prototype.detailRow = function (c) {
    return el("tr", { class: "detail", "data-detail-of": c.id }, el("td", { colspan: this.columns }, detail(c, this.pair)));
  };

  Explorer.prototype.toggle = function (row) {
    var id = row.dataset.caseId;
    var c = this.pair.cases.find(function (x) { return x.id === id; });
    if (!c) return;
    var next = row.nextElementSibling;
    var button = row.querySelector("button.toggle");
    if (this.open.has(id)) {
      this.open.delete(id);
      if (next && next.classList.contains("detail")) next.remove();
      row.classList.remove("open");
      button.setAttribute("aria-expanded", "false");
      button.textContent = "▸";
    } else {
      this.open.add(id);
      row.after(this.detailRow(c));
      row.classList.add("open");
      button.setAttribute("aria-expanded", "true");
      button.textContent = "▾";
    }
  };

  Explorer.prototype.show = function (id) {
    // From a case named in a rule or finding: list just that case, opened.
    this.filter = "all";
    this.tag = "";
    if (this.tagSelect) this.tagSelect.value = "";
    this.search.value = id;
    this.query = id.toLowerCase();
    this.open.add(id);
    this.limit = PAGE;
    this.update();
    this.root.scrollIntoView({ block: "start" });
  };

  var explorers = {};
  document.querySelectorAll("section.explorer").forEach(function (root) {
    var index = root.dataset.pair;
    explorers[index] = new Explorer(root, DATA.pairs[Number(index)]);
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest("button.case-link");
    if (!link) return;
    var section = link.closest("section.pair");
    var explorer = section && explorers[section.dataset.pair];
    if (explorer) explorer.show(link.dataset.case);
  });
})();
