// The supervisor's live view: fetch the page's figures as JSON every few seconds and put them
// in place. If teams or agents came or went, reload the page instead (the server renders rows).
(function () {
  "use strict";

  function clock(seconds) {  // the same format as tickets.admin_live.clock
    if (seconds === null || seconds === undefined) return "—";
    var hours = Math.floor(seconds / 3600), minutes = Math.floor((seconds % 3600) / 60), rest = seconds % 60;
    var mm = (hours && minutes < 10 ? "0" : "") + minutes, ss = (rest < 10 ? "0" : "") + rest;
    return hours ? hours + ":" + mm + ":" + ss : mm + ":" + ss;
  }

  function interpolate(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_, key) { return values[key]; });
  }

  function shape(data) {
    return data.teams.map(function (team) {
      return team.id + ":" + team.agents.map(function (agent) { return agent.id; }).join(",");
    }).join("|");
  }

  function shownShape() {
    return Array.prototype.map.call(document.querySelectorAll("#live-teams [data-team]"), function (box) {
      return box.dataset.team + ":" + Array.prototype.map.call(box.querySelectorAll("[data-agent]"), function (row) {
        return row.dataset.agent;
      }).join(",");
    }).join("|");
  }

  function fill(element, record) {
    Array.prototype.forEach.call(element.querySelectorAll("[data-field]"), function (cell) {
      var key = cell.dataset.field, value = record[key];
      if (cell.closest("[data-agent]") !== (element.dataset.agent !== undefined ? element : null)) return;
      if (key === "load") {
        cell.textContent = record.load + " / " + record.capacity;
        cell.classList.toggle("live-over", record.load >= record.capacity);
      } else if (cell.dataset.format === "clock") {
        cell.textContent = clock(value);
      } else {
        cell.textContent = value === null || value === undefined ? "—" : value;
      }
      if (key === "presence_label") {
        cell.className = "live-presence-" + record.presence;
      }
      if (cell.dataset.alert) cell.classList.toggle(cell.dataset.alert, value > 0);
    });
  }

  function render(data) {
    if (shape(data) !== shownShape()) {
      window.location.reload();
      return;
    }
    data.teams.forEach(function (team) {
      var box = document.querySelector('#live-teams [data-team="' + team.id + '"]');
      fill(box, team);
      team.agents.forEach(function (agent) {
        fill(box.querySelector('[data-agent="' + agent.id + '"]'), agent);
      });
    });
  }

  function start() {
    var status = document.getElementById("live-status");
    if (!status) return;
    var url = status.dataset.url, every = parseInt(status.dataset.refresh, 10) * 1000, lastGood = new Date();
    // The server's first rendering shows alerts without colour; apply them once.
    Array.prototype.forEach.call(document.querySelectorAll("[data-alert]"), function (cell) {
      cell.classList.toggle(cell.dataset.alert, parseInt(cell.textContent, 10) > 0);
    });

    function refresh() {
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}, cache: "no-store"})
        .then(function (response) {
          if (!response.ok) throw new Error(response.status + " " + response.statusText);
          return response.json();
        })
        .then(function (data) {
          render(data);
          lastGood = new Date();
          status.classList.remove("live-stale");
          status.textContent = interpolate(status.dataset.updated, {time: lastGood.toLocaleTimeString(), seconds: every / 1000});
        })
        .catch(function (error) {
          status.classList.add("live-stale");
          status.textContent = interpolate(status.dataset.stale, {error: error.message, time: lastGood.toLocaleTimeString()});
        })
        .finally(function () { window.setTimeout(refresh, every); });
    }
    window.setTimeout(refresh, every);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
