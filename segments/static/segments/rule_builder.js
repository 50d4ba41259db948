/* Segment rule builder for the Django admin (no dependencies, works offline).
 *
 * Edits the JSON rule tree kept in the hidden <textarea name="rules"> as nested groups
 * (all / any, optionally negated with "not") of conditions whose inputs follow the field
 * catalogue (segments.rules.catalogue()). Every change rewrites the textarea and asks the
 * server for a live count and a sample of matching members.
 */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function option(value, label, selected) {
    var o = el("option", { value: value, text: label });
    if (selected) o.selected = true;
    return o;
  }

  function splitList(text) {
    return String(text || "").split(",").map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function parseNumber(text) {
    var t = String(text).trim();
    if (t === "") return t;
    var n = Number(t);
    return isNaN(n) ? t : n;
  }

  var datalists = 0;
  function suggest(input, values) {
    // A <datalist> offers values found in the data (demographics, categories) while typing.
    if (!values || !values.length) return input;
    var id = "segment-suggestions-" + (++datalists);
    var list = el("datalist", { id: id });
    values.forEach(function (v) { list.appendChild(el("option", { value: v })); });
    input.setAttribute("list", id);
    var wrap = el("span", {}, [input, list]);
    return wrap;
  }

  function init(textarea) {
    var catalogue = JSON.parse(document.getElementById(textarea.dataset.catalogue).textContent);
    var fields = {};
    catalogue.fields.forEach(function (f) { fields[f.name] = f; });
    var ops = catalogue.operators;
    var root = el("div", { className: "segment-rules-builder" });
    var preview = el("div", { className: "segment-rules-preview" });
    var toggle = el("a", { href: "#", className: "segment-rules-toggle", text: "Edit as JSON" });
    textarea.parentNode.insertBefore(root, textarea);
    textarea.parentNode.insertBefore(toggle, textarea);
    textarea.parentNode.appendChild(preview);
    textarea.style.display = "none";
    textarea.rows = 12;

    toggle.addEventListener("click", function (event) {
      event.preventDefault();
      var showJson = textarea.style.display === "none";
      textarea.style.display = showJson ? "" : "none";
      root.style.display = showJson ? "none" : "";
      toggle.textContent = showJson ? "Back to the rule builder" : "Edit as JSON";
      if (!showJson) load();
    });
    textarea.addEventListener("input", schedulePreview);

    var tree;
    function load() {
      try {
        tree = textarea.value.trim() ? JSON.parse(textarea.value) : { all: [] };
      } catch (e) {
        tree = { all: [] };
      }
      if (!tree || typeof tree !== "object" || (!tree.all && !tree.any && !tree.not && !tree.field)) tree = { all: [] };
      if (tree.field || tree.not) tree = { all: [tree] };
      render();
    }

    function changed() {
      textarea.value = JSON.stringify(tree, null, 2);
      schedulePreview();
    }

    function render() {
      root.innerHTML = "";
      root.appendChild(groupNode(tree, null));
      changed();
    }

    // --- groups ------------------------------------------------------------------------------
    function groupNode(node, remove) {
      var negated = false;
      var group = node;
      if (node.not) { negated = true; group = node.not; }
      var key = group.any ? "any" : "all";
      var children = group[key];
      var box = el("div", { className: "segment-group" });
      var not = el("input", { type: "checkbox", title: "Negate this group" });
      not.checked = negated;
      var combinator = el("select", {}, [
        option("all", "ALL of these match", key === "all"),
        option("any", "ANY of these matches", key === "any"),
      ]);
      var header = el("div", { className: "segment-group-header" }, [
        el("label", {}, [not, document.createTextNode(" NOT ")]),
        combinator,
      ]);
      var addCondition = el("button", { type: "button", className: "button", text: "+ condition" });
      var addGroup = el("button", { type: "button", className: "button", text: "+ group" });
      header.appendChild(addCondition);
      header.appendChild(addGroup);
      if (remove) {
        var drop = el("button", { type: "button", className: "button segment-remove", text: "remove group" });
        drop.addEventListener("click", remove);
        header.appendChild(drop);
      }
      box.appendChild(header);
      var list = el("div", { className: "segment-group-children" });
      box.appendChild(list);

      function replaceSelf(newNode) {
        Object.keys(node).forEach(function (k) { delete node[k]; });
        Object.keys(newNode).forEach(function (k) { node[k] = newNode[k]; });
      }

      function drawChildren() {
        list.innerHTML = "";
        if (!children.length) list.appendChild(el("p", { className: "help", text: key === "all" ? "No conditions: every member matches." : "No conditions: nobody matches." }));
        children.forEach(function (child, index) {
          var removeChild = function () { children.splice(index, 1); drawChildren(); changed(); };
          var inner = child;
          var isGroup = child.all || child.any || (child.not && !child.not.field);
          list.appendChild(isGroup ? groupNode(child, removeChild) : conditionNode(child, removeChild));
          void inner;
        });
      }
      not.addEventListener("change", function () {
        var plain = {}; plain[key] = children;
        replaceSelf(not.checked ? { not: plain } : plain);
        changed();
      });
      combinator.addEventListener("change", function () {
        key = combinator.value;
        var plain = {}; plain[key] = children;
        replaceSelf(not.checked ? { not: plain } : plain);
        drawChildren();
        changed();
      });
      addCondition.addEventListener("click", function () {
        var first = catalogue.fields[0];
        children.push({ field: first.name, op: first.ops[0], value: "" });
        drawChildren(); changed();
      });
      addGroup.addEventListener("click", function () {
        children.push({ all: [] });
        drawChildren(); changed();
      });
      drawChildren();
      return box;
    }

    // --- conditions --------------------------------------------------------------------------
    function conditionNode(node, remove) {
      // A negated single condition is kept as {"not": condition}.
      var negated = !!node.not;
      var cond = negated ? node.not : node;
      var row = el("div", { className: "segment-condition" });

      function draw() {
        row.innerHTML = "";
        var spec = fields[cond.field] || catalogue.fields[0];
        var not = el("input", { type: "checkbox", title: "Negate this condition" });
        not.checked = negated;
        var fieldSelect = el("select", { className: "segment-field" });
        var groups = {};
        catalogue.fields.forEach(function (f) {
          if (!groups[f.group]) { groups[f.group] = el("optgroup", { label: f.group }); fieldSelect.appendChild(groups[f.group]); }
          groups[f.group].appendChild(option(f.name, f.label, f.name === spec.name));
        });
        var opSelect = el("select", { className: "segment-op" });
        spec.ops.forEach(function (o) { opSelect.appendChild(option(o, ops[o] || o, o === cond.op)); });
        if (spec.ops.indexOf(cond.op) < 0) cond.op = spec.ops[0];
        row.appendChild(el("label", { title: "NOT" }, [not, document.createTextNode(" not ")]));
        row.appendChild(fieldSelect);
        row.appendChild(opSelect);
        row.appendChild(valueInput(spec, cond));
        spec.params.forEach(function (p) { row.appendChild(paramInput(p, cond)); });
        if (spec.help) row.appendChild(el("span", { className: "help", text: spec.help }));
        var drop = el("button", { type: "button", className: "button segment-remove", text: "×", title: "Remove" });
        drop.addEventListener("click", remove);
        row.appendChild(drop);

        not.addEventListener("change", function () {
          negated = not.checked;
          var copy = JSON.parse(JSON.stringify(cond));
          Object.keys(node).forEach(function (k) { delete node[k]; });
          if (negated) node.not = copy; else Object.keys(copy).forEach(function (k) { node[k] = copy[k]; });
          cond = negated ? node.not : node;
          changed();
        });
        fieldSelect.addEventListener("change", function () {
          var next = fields[fieldSelect.value];
          Object.keys(cond).forEach(function (k) { delete cond[k]; });
          cond.field = next.name; cond.op = next.ops[0]; cond.value = defaultValue(next, next.ops[0]);
          next.params.forEach(function (p) { if (p.required && p.kind === "choice" && p.choices.length) cond[p.name] = p.choices[0][0]; });
          draw(); changed();
        });
        opSelect.addEventListener("change", function () {
          var before = cond.op;
          cond.op = opSelect.value;
          if (shape(spec, before) !== shape(spec, cond.op)) cond.value = defaultValue(spec, cond.op);
          draw(); changed();
        });
      }
      draw();
      return row;
    }

    function shape(spec, op) {
      if (op === "is" || op === "is_set") return "bool";
      if (op === "between") return "pair";
      if (op === "in" || op === "not_in" || op === "starts_with") return "list";
      if (spec.type === "date" && (op === "in_last_days" || op === "more_than_days_ago")) return "days";
      return "single";
    }

    function defaultValue(spec, op) {
      var s = shape(spec, op);
      if (s === "bool") return true;
      if (s === "pair") return ["", ""];
      if (s === "list") return spec.type === "segment" ? [] : [];
      return "";
    }

    function inputType(spec, op) {
      if (spec.type === "date" && shape(spec, op) !== "days") return "date";
      if (spec.type === "integer" || spec.type === "number" || shape(spec, op) === "days") return "number";
      return "text";
    }

    function valueInput(spec, cond) {
      var s = shape(spec, cond.op);
      var wrap = el("span", { className: "segment-value" });
      var numeric = spec.type === "integer" || spec.type === "number" || s === "days";
      if (s === "bool") {
        var sel = el("select", {}, [option("true", "yes", cond.value !== false), option("false", "no", cond.value === false)]);
        sel.addEventListener("change", function () { cond.value = sel.value === "true"; changed(); });
        wrap.appendChild(sel);
      } else if (s === "pair") {
        var pair = Array.isArray(cond.value) ? cond.value : ["", ""];
        [0, 1].forEach(function (i) {
          var input = el("input", { type: inputType(spec, cond.op), value: pair[i] === undefined ? "" : pair[i], step: "any" });
          input.addEventListener("input", function () {
            pair[i] = numeric ? parseNumber(input.value) : input.value;
            cond.value = pair; changed();
          });
          wrap.appendChild(input);
          if (i === 0) wrap.appendChild(document.createTextNode(" and "));
        });
      } else if (s === "list" && spec.choices.length) {
        var multi = el("select", { multiple: "multiple", size: Math.min(spec.choices.length, 5) });
        var chosen = (Array.isArray(cond.value) ? cond.value : []).map(String);
        spec.choices.forEach(function (c) { multi.appendChild(option(c[0], c[1], chosen.indexOf(String(c[0])) >= 0)); });
        multi.addEventListener("change", function () {
          cond.value = Array.prototype.filter.call(multi.options, function (o) { return o.selected; }).map(function (o) {
            return spec.type === "segment" ? parseNumber(o.value) : o.value;
          });
          changed();
        });
        wrap.appendChild(multi);
      } else if (s === "list") {
        var list = el("input", { type: "text", value: (Array.isArray(cond.value) ? cond.value : []).join(", "), placeholder: "comma-separated" });
        list.addEventListener("input", function () {
          var values = splitList(list.value);
          cond.value = spec.type === "segment" ? values.map(parseNumber) : values;
          changed();
        });
        wrap.appendChild(suggest(list, spec.suggestions));
      } else if (spec.choices.length) {
        var one = el("select", {}, [option("", "---", !cond.value)]);
        spec.choices.forEach(function (c) { one.appendChild(option(c[0], c[1], c[0] === cond.value)); });
        one.addEventListener("change", function () { cond.value = one.value; changed(); });
        wrap.appendChild(one);
      } else {
        var single = el("input", { type: inputType(spec, cond.op), value: cond.value === undefined ? "" : cond.value, step: "any" });
        single.addEventListener("input", function () {
          cond.value = numeric ? parseNumber(single.value) : single.value;
          changed();
        });
        wrap.appendChild(spec.type === "text" ? suggest(single, spec.suggestions) : single);
      }
      return wrap;
    }

    function paramInput(param, cond) {
      var wrap = el("span", { className: "segment-param" }, [el("span", { text: " " + param.label + " " })]);
      var current = cond[param.name];
      function set(value) {
        if (value === "" || value === null || (Array.isArray(value) && !value.length)) delete cond[param.name];
        else cond[param.name] = value;
        changed();
      }
      if (param.kind === "window") {
        var w = current || {};
        var mode = w.last_days ? "last" : (w.from ? "range" : "all");
        var modeSelect = el("select", {}, [
          option("all", "all history", mode === "all"),
          option("last", "last N days", mode === "last"),
          option("range", "date range", mode === "range"),
        ]);
        var days = el("input", { type: "number", min: "1", value: w.last_days || "", className: "segment-days" });
        var from = el("input", { type: "date", value: w.from || "" });
        var to = el("input", { type: "date", value: w.to || "" });
        function sync() {
          days.style.display = modeSelect.value === "last" ? "" : "none";
          from.style.display = to.style.display = modeSelect.value === "range" ? "" : "none";
        }
        function update() {
          sync();
          // "last N days" without N is kept as such: the server refuses it (never all history)
          if (modeSelect.value === "last") set({ last_days: days.value ? parseInt(days.value, 10) : null });
          else if (modeSelect.value === "range") set(from.value ? (to.value ? { from: from.value, to: to.value } : { from: from.value }) : "");
          else set("");
        }
        [modeSelect, days, from, to].forEach(function (i) { i.addEventListener("input", update); i.addEventListener("change", update); });
        sync();
        [modeSelect, days, from, to].forEach(function (i) { wrap.appendChild(i); });
      } else if (param.kind === "choice") {
        var sel = el("select", {});
        if (!param.required) sel.appendChild(option("", "---", current === undefined));
        param.choices.forEach(function (c) { sel.appendChild(option(c[0], c[1], c[0] === current)); });
        sel.addEventListener("change", function () {
          if (sel.value === "" && !param.required) set(""); else { cond[param.name] = sel.value; changed(); }
        });
        wrap.appendChild(sel);
      } else if (param.kind === "int") {
        var n = el("input", { type: "number", min: "1", value: current || "", className: "segment-days" });
        n.addEventListener("input", function () { set(n.value ? parseInt(n.value, 10) : ""); });
        wrap.appendChild(n);
      } else {
        var text = el("input", { type: "text", value: Array.isArray(current) ? current.join(", ") : (current || ""), placeholder: "any" });
        text.addEventListener("input", function () {
          var values = splitList(text.value);
          set(param.kind === "ids" ? values.map(parseNumber) : values);
        });
        wrap.appendChild(suggest(text, param.suggestions));
      }
      return wrap;
    }

    // --- live preview ------------------------------------------------------------------------
    var timer = null;
    var sequence = 0;
    function schedulePreview() {
      if (!textarea.dataset.previewUrl) return;
      clearTimeout(timer);
      timer = setTimeout(runPreview, 400);
    }

    function csrfToken() {
      var input = document.querySelector("input[name=csrfmiddlewaretoken]");
      return input ? input.value : "";
    }

    function runPreview() {
      var mine = ++sequence;
      preview.innerHTML = "";
      preview.appendChild(el("p", { className: "help", text: "Counting matching members…" }));
      var body = new FormData();
      body.append("rules", textarea.value);
      if (textarea.dataset.segmentId) body.append("segment", textarea.dataset.segmentId);
      fetch(textarea.dataset.previewUrl, {
        method: "POST",
        body: body,
        headers: { "X-CSRFToken": csrfToken() },
        credentials: "same-origin",
      })
        .then(function (response) { return response.json(); })
        .then(function (data) { if (mine === sequence) showPreview(data); })
        .catch(function (error) { if (mine === sequence) showPreview({ errors: [String(error)] }); });
    }

    function showPreview(data) {
      preview.innerHTML = "";
      if (data.errors) {
        var errors = el("ul", { className: "errorlist" });
        data.errors.forEach(function (e) { errors.appendChild(el("li", { text: e })); });
        preview.appendChild(errors);
        return;
      }
      preview.appendChild(el("p", {}, [el("strong", { text: data.count.toLocaleString() + (data.count === 1 ? " member matches now" : " members match now") }), document.createTextNode(" — " + data.description)]));
      if (data.incomplete) preview.appendChild(el("p", { className: "help", text: data.incomplete + " condition(s) not filled in yet: not counted until they are." }));
      if (data.sample.length) {
        var table = el("table", { className: "segment-sample" });
        table.appendChild(el("thead", {}, [el("tr", {}, ["Member number", "Name", "Status"].map(function (h) { return el("th", { text: h }); }))]));
        var tbody = el("tbody");
        data.sample.forEach(function (m) {
          var link = el("a", { href: m.url, text: m.member_number });
          tbody.appendChild(el("tr", {}, [el("td", {}, [link]), el("td", { text: m.name }), el("td", { text: m.status })]));
        });
        table.appendChild(tbody);
        preview.appendChild(table);
      }
    }

    load();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("textarea[data-rule-builder]").forEach(init);
  });
})();
