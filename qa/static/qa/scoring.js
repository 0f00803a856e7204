// The running score, the same arithmetic as qa/scoring.py: weighted mean of points/max over the
// criteria scored (N/A left out), 0 when a critical criterion scores 0. No reload between criteria.
(function () {
  "use strict";
  const form = document.getElementById("scorecard");
  const output = document.getElementById("live-score");
  function update() {
    let earned = 0, possible = 0, zeroed = false, scored = 0;
    form.querySelectorAll("fieldset.criterion").forEach(function (set) {
      const checked = set.querySelector("input[type=radio]:checked");
      if (!checked || checked.value === "na") { return; }
      const points = Number(checked.value), weight = Number(set.dataset.weight), max = Number(set.dataset.max);
      scored += 1;
      if (set.dataset.critical === "1" && points === 0) { zeroed = true; }
      earned += weight * points / max;
      possible += weight;
    });
    output.textContent = zeroed ? "0.00" : (possible ? (earned / possible * 100).toFixed(2) : "—");
    output.dataset.scored = String(scored);
  }
  form.addEventListener("change", update);
  // Keyboard: digits pick the points of the criterion in focus, "n" marks it N/A, then focus moves on.
  form.addEventListener("keydown", function (event) {
    const set = event.target.closest && event.target.closest("fieldset.criterion");
    if (!set || event.target.type === "text") { return; }
    const value = event.key === "n" ? "na" : event.key;
    const radio = set.querySelector("input[type=radio][value='" + value + "']");
    if (!radio) { return; }
    event.preventDefault();
    radio.checked = true;
    update();
    const sets = Array.from(form.querySelectorAll("fieldset.criterion"));
    const next = sets[sets.indexOf(set) + 1];
    (next ? next.querySelector("input[type=radio]") : form.querySelector("textarea")).focus();
  });
  update();
})();
