// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  // Options menu: keep aria-expanded in step, close on Escape or a click elsewhere.
  document.querySelectorAll("details[data-menu]").forEach(function (menu) {
    var summary = menu.querySelector("summary");
    var sync = function () {
      summary.setAttribute("aria-expanded", menu.open ? "true" : "false");
    };
    sync();
    menu.addEventListener("toggle", sync);
    menu.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.open) {
        menu.open = false;
        summary.focus();
      }
    });
    document.addEventListener("click", function (event) {
      if (menu.open && !menu.contains(event.target)) {
        menu.open = false;
      }
    });
  });

  // The guided tour: bring the next step's note into view and move focus to it.
  var callout = document.querySelector("[data-tour-callout]");
  if (callout) {
    callout.scrollIntoView({ block: "center" });
    callout.focus({ preventScroll: true });
  }

  // The code sheet: Print and Copy need JavaScript, so they stay hidden without it.
  var codes = document.getElementById("codes");
  if (!codes) {
    return;
  }
  var status = document.querySelector("[data-copy-status]");
  var printButton = document.querySelector("[data-action=print]");
  var copyButton = document.querySelector("[data-action=copy]");

  printButton.hidden = false;
  printButton.addEventListener("click", function () {
    window.print();
  });

  if (navigator.clipboard && window.isSecureContext) {
    copyButton.hidden = false;
    copyButton.addEventListener("click", function () {
      // The same text as Download (settings/codes.txt), rendered by the server into the page.
      var text = document.querySelector("[data-codes-text]").textContent;
      var count = codes.querySelectorAll(".code").length;
      navigator.clipboard.writeText(text).then(
        function () {
          status.textContent = "Copied all " + count + " codes.";
        },
        function () {
          status.textContent = "Could not copy. Select the codes and copy them by hand.";
        }
      );
    });
  }
})();
