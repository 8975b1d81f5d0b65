/* agent-evals dashboard: the prompt picker and the filters.
   The page is drawn by the server (charts included); this script only shows and hides what it drew.
   Every filterable mark or row carries data-ref ("run-3", "version-1", "verdict-0", "point-5",
   "seg-4"); which refs stay visible is decided here from the embedded index, never from page text.
   Nothing is parsed as HTML: the script writes text with textContent only. */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("dashboard-data").textContent);
  var DAY = 86400000;
  var NOUNS = [["versions", "version"], ["runs", "run"], ["verdicts", "verdict"], ["points", "metric value"]];

  function visible(index, f) {
    // f: {evalset, branch, status, range}; returns the set of refs to show.
    var show = {};
    var byEvalset = function (name) { return !f.evalset || name === f.evalset; };
    var byBranch = function (name) { return !f.branch || name === f.branch; };
    var candidates = [];
    index.versions.forEach(function (v, i) {
      if ((!f.evalset || v.evalsets.indexOf(f.evalset) >= 0) && (!f.branch || v.branches.indexOf(f.branch) >= 0)) {
        candidates.push(i);
      }
    });
    var cutoff = -Infinity;
    var kept = null; // "last N versions": the version indexes kept
    if (f.range.charAt(0) === "v") {
      kept = {};
      candidates.slice(-Number(f.range.slice(2))).forEach(function (i) { kept[i] = true; });
      var firsts = Object.keys(kept).map(function (i) { return index.versions[i].first; })
        .filter(function (t) { return t !== null; });
      if (firsts.length) cutoff = Math.min.apply(null, firsts);
    } else if (f.range.charAt(0) === "d" && index.generated !== null) {
      cutoff = index.generated - Number(f.range.slice(2)) * DAY;
    }
    var inTime = function (t) { return cutoff === -Infinity || (t !== null && t >= cutoff); };
    var inWindow = function (version, t) { return kept && version >= 0 ? kept[version] === true : inTime(t); };

    candidates.forEach(function (i) {
      var v = index.versions[i];
      if (kept ? kept[i] : cutoff === -Infinity || (v.last !== null && v.last >= cutoff)) show["version-" + i] = true;
    });
    index.runs.forEach(function (r, i) {
      if (byEvalset(r.evalset) && byBranch(r.branch) && inWindow(r.version, r.at)) show["run-" + i] = true;
    });
    index.verdicts.forEach(function (v, i) {
      if (byEvalset(v.evalset) && byBranch(v.branch) && (!f.status || v.status === f.status) && inWindow(v.version, v.at)) {
        show["verdict-" + i] = true;
      }
    });
    index.points.forEach(function (p, i) { if (inTime(p.at)) show["point-" + i] = true; });
    index.segments.forEach(function (s, i) {
      if (show["point-" + s[0]] && show["point-" + s[1]]) show["seg-" + i] = true;
    });
    return show;
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function Section(root) {
    this.root = root;
    this.index = DATA.prompts[Number(root.dataset.prompt)];
    this.form = root.querySelector("form.filters");
    this.output = root.querySelector("output.shown");
    this.marks = Array.prototype.slice.call(root.querySelectorAll("[data-ref]"));
    var self = this;
    this.form.addEventListener("change", function () { self.update(); });
    this.form.addEventListener("submit", function (event) { event.preventDefault(); });
    this.update();
  }

  Section.prototype.filters = function () {
    var f = {};
    ["evalset", "branch", "status", "range"].forEach(function (name) {
      var field = this.form.elements.namedItem(name);
      f[name] = field ? field.value : "";
    }, this);
    return f;
  };

  Section.prototype.update = function () {
    var show = visible(this.index, this.filters());
    this.marks.forEach(function (node) { node.classList.toggle("off", !show[node.dataset.ref]); });
    var index = this.index;
    this.output.textContent = NOUNS.map(function (pair) {
      var total = index[pair[0]].length;
      var prefix = pair[0] === "points" ? "point-" : pair[0].slice(0, -1) + "-";
      var n = 0;
      for (var i = 0; i < total; i++) if (show[prefix + i]) n++;
      return n + " of " + plural(total, pair[1]);
    }).join(" · ");
  };

  var sections = Array.prototype.slice.call(document.querySelectorAll("section.prompt"));
  sections.forEach(function (root) { new Section(root); });

  var picker = document.getElementById("prompt-picker");
  function pick(value) {
    picker.value = value;
    sections.forEach(function (root) {
      root.classList.toggle("off", value !== "all" && root.dataset.prompt !== value);
    });
  }
  if (picker) {
    picker.addEventListener("change", function () { pick(picker.value); });
    document.querySelectorAll("button.pick").forEach(function (button) {
      button.addEventListener("click", function () { pick(button.dataset.pick); });
    });
    pick(picker.value);
  }
})();
