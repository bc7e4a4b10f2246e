// Flow admin: each step shows only the fields its kind uses.
"use strict";
(function () {
  const FIELDS_BY_KIND = {
    message: ["text", "next_step"],
    ask: ["text", "ask_kind", "attribute", "choices", "next_step"],
    api_call: ["api", "next_step", "branch_step"],
    delay: ["delay_seconds", "next_step"],
    condition: ["attribute", "operator", "value", "next_step", "branch_step"],
    goto: ["next_step"],
    end: [],
  };
  const ALL = ["text", "ask_kind", "attribute", "choices", "api", "delay_seconds",
    "operator", "value", "next_step", "branch_step"];

  function update(select) {
    const step = select.closest(".inline-related");
    if (!step) return;
    const shown = FIELDS_BY_KIND[select.value] || ALL;
    for (const name of ALL) {
      // Two fields on one line each sit in a .fieldBox inside a shared .form-row.
      const box = step.querySelector(".fieldBox.field-" + name) ||
        step.querySelector(".form-row.field-" + name);
      if (box) box.style.display = shown.includes(name) ? "" : "none";
    }
    // A row of two fields disappears when both of its fields do.
    for (const row of step.querySelectorAll(".form-row")) {
      const boxes = row.querySelectorAll(".fieldBox");
      if (boxes.length === 0) continue;
      const visible = Array.from(boxes).some((box) => box.style.display !== "none");
      row.style.display = visible ? "" : "none";
    }
  }

  function bind(root) {
    for (const select of root.querySelectorAll("select[name$='-kind']")) {
      if (select.name.includes("__prefix__")) continue;
      select.addEventListener("change", () => update(select));
      update(select);
    }
  }

  document.addEventListener("DOMContentLoaded", () => bind(document));
  document.addEventListener("formset:added", (event) => bind(event.target));
})();
