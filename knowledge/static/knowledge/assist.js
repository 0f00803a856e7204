/* Agent assist on the ticket page: insert suggested articles and canned replies into the reply
   box, expand "/shortcut" + Tab, and send article feedback without leaving the page.
   Plain JavaScript; the data comes from the json_script element "kb-assist-data". */
(function () {
  "use strict";

  var dataNode = document.getElementById("kb-assist-data");
  if (!dataNode) {
    return;
  }
  var data = JSON.parse(dataNode.textContent);
  var form = document.querySelector(".reply-box form");
  var box = form ? form.querySelector("textarea[name=body]") : null;
  var idsField = form ? form.querySelector("input[name=articles]") : null;
  var inserted = {}; // article id -> title, for the reply's "articles" field

  function find(list, id) {
    for (var i = 0; i < list.length; i += 1) {
      if (String(list[i].id) === String(id)) {
        return list[i];
      }
    }
    return null;
  }

  function insertAtCursor(text, replaceFrom) {
    if (!box) {
      return;
    }
    var end = typeof box.selectionEnd === "number" ? box.selectionEnd : box.value.length;
    var start = typeof replaceFrom === "number" ? replaceFrom : (typeof box.selectionStart === "number" ? box.selectionStart : end);
    var before = box.value.slice(0, start);
    var after = box.value.slice(end);
    var gap = before && !/\n$/.test(before) && typeof replaceFrom !== "number" ? "\n" : "";
    box.value = before + gap + text + after;
    var caret = (before + gap + text).length;
    box.focus();
    box.setSelectionRange(caret, caret);
  }

  function syncIds() {
    if (idsField) {
      idsField.value = Object.keys(inserted).join(",");
    }
  }

  // Suggested articles: "Insert into reply".
  document.querySelectorAll(".kb-insert").forEach(function (button) {
    button.addEventListener("click", function () {
      var article = find(data.articles, button.getAttribute("data-article"));
      if (!article) {
        return;
      }
      insertAtCursor(article.text);
      inserted[String(article.id)] = article.title;
      syncIds();
    });
  });

  if (form && box) {
    // An article whose title was deleted from the message again was not used.
    form.addEventListener("submit", function () {
      Object.keys(inserted).forEach(function (id) {
        if (box.value.indexOf(inserted[id]) === -1) {
          delete inserted[id];
        }
      });
      syncIds();
    });

    // "/greeting" then Tab: the canned reply with that shortcut replaces what was typed.
    box.addEventListener("keydown", function (event) {
      if (event.key !== "Tab" || box.selectionStart !== box.selectionEnd) {
        return;
      }
      var before = box.value.slice(0, box.selectionStart);
      var match = /(^|\s)\/([\w\u3400-\u9fff-]+)$/.exec(before);
      if (!match) {
        return;
      }
      for (var i = 0; i < data.canned.length; i += 1) {
        if (data.canned[i].shortcut && data.canned[i].shortcut === match[2]) {
          event.preventDefault();
          insertAtCursor(data.canned[i].text, before.length - match[2].length - 1);
          return;
        }
      }
    });
  }

  // Canned replies: choose, preview, insert.
  var select = document.getElementById("kb-canned-select");
  var preview = document.querySelector(".kb-canned-preview");
  if (select) {
    select.addEventListener("change", function () {
      var reply = find(data.canned, select.value);
      if (preview) {
        preview.textContent = reply ? reply.text : "";
      }
    });
    var insertButton = document.querySelector(".kb-canned-insert");
    if (insertButton) {
      insertButton.addEventListener("click", function () {
        var reply = find(data.canned, select.value);
        if (reply) {
          insertAtCursor(reply.text);
        }
      });
    }
  }

  // Helpful / not helpful: posted in the background so the reply being typed stays.
  document.querySelectorAll("form.kb-feedback").forEach(function (feedback) {
    feedback.addEventListener("submit", function (event) {
      if (!window.fetch || !window.FormData) {
        return; // the plain form post still works
      }
      event.preventDefault();
      var body = new FormData(feedback);
      if (event.submitter && event.submitter.name) {
        body.append(event.submitter.name, event.submitter.value);
      }
      var result = feedback.parentNode.querySelector(".kb-feedback-result");
      fetch(feedback.action, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (response) {
        return response.json().then(function (json) {
          return { ok: response.ok, json: json };
        });
      }).then(function (answer) {
        if (answer.ok) {
          feedback.querySelector(".kb-count-helpful").textContent = answer.json.helpful;
          feedback.querySelector(".kb-count-unhelpful").textContent = answer.json.unhelpful;
        }
        if (result) {
          result.textContent = answer.ok ? answer.json.message : answer.json.error.message;
        }
      }).catch(function () {
        feedback.submit();
      });
    });
  });
}());
