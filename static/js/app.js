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

  // Pending states: a form that checks a password or a code takes a moment (bcrypt). Its button
  // says what is happening (data-pending="Checking…"; forms with a password field say
  // "Checking…" unless told otherwise) and a second press sends nothing. The button is not
  // disabled: a disabled button would leave its own name and value out of the form.
  var PENDING_DEFAULT = "Checking…";
  var pendingText = function (form, button) {
    if (button && button.hasAttribute("data-pending")) {
      return button.getAttribute("data-pending");
    }
    if (button && button.hasAttribute("formaction")) {
      return null;
    }
    return form.querySelector("input[type=password]") ? PENDING_DEFAULT : null;
  };
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.hasAttribute("data-sending")) {
        event.preventDefault();
        return;
      }
      var button = event.submitter || form.querySelector("[type=submit]");
      var text = pendingText(form, button);
      if (!text || !button) {
        return;
      }
      form.setAttribute("data-sending", "");
      form.setAttribute("aria-busy", "true");
      button.setAttribute("data-idle-text", button.textContent);
      button.setAttribute("aria-disabled", "true");
      button.classList.add("is-pending");
      button.textContent = text;
    });
  });
  // Back to a page kept in the browser's memory: its buttons work again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-sending]").forEach(function (form) {
      form.removeAttribute("data-sending");
      form.removeAttribute("aria-busy");
      form.querySelectorAll("[data-idle-text]").forEach(function (button) {
        button.textContent = button.getAttribute("data-idle-text");
        button.removeAttribute("data-idle-text");
        button.removeAttribute("aria-disabled");
        button.classList.remove("is-pending");
      });
    });
  });

  // Times: the server writes UTC (<time datetime="…Z" title="… UTC">); here they read in the
  // browser's time zone, recent ones relative ("2 minutes ago"), with UTC kept in the title.
  var times = document.querySelectorAll("time[data-local-time]");
  if (times.length && window.Intl && Intl.DateTimeFormat) {
    var absolute = new Intl.DateTimeFormat(undefined, {
      day: "numeric",
      month: "short",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    });
    var relative = Intl.RelativeTimeFormat
      ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" })
      : null;
    var steps = [
      [60, 1, "second"],
      [3600, 60, "minute"],
      [86400, 3600, "hour"],
      [7 * 86400, 86400, "day"],
    ];
    var show = function () {
      var current = Date.now();
      times.forEach(function (time) {
        var when = new Date(time.getAttribute("datetime"));
        if (isNaN(when.getTime())) {
          return;
        }
        var utc = time.getAttribute("data-utc") || time.getAttribute("title") || "";
        time.setAttribute("data-utc", utc);
        var local = absolute.format(when);
        var seconds = Math.round((when.getTime() - current) / 1000);
        var text = local;
        if (relative && Math.abs(seconds) < steps[steps.length - 1][0]) {
          if (Math.abs(seconds) < 45) {
            text = "just now";
          } else {
            for (var i = 0; i < steps.length; i += 1) {
              if (Math.abs(seconds) < steps[i][0]) {
                text = relative.format(Math.round(seconds / steps[i][1]), steps[i][2]);
                break;
              }
            }
          }
        }
        time.textContent = text;
        time.setAttribute("title", text === local ? utc : local + " (" + utc + ")");
      });
    };
    show();
    window.setInterval(show, 30000);
  }

  // Copy buttons need the clipboard; without it they stay hidden and the text stays selectable.
  var canCopy = Boolean(navigator.clipboard && window.isSecureContext);

  // App set-up: Copy key (the key stays on the page, selectable, for everyone).
  document.querySelectorAll("[data-action=copy-key]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    var keyStatus = document.querySelector("[data-copy-key-status]");
    if (!canCopy || !source) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.replace(/\s+/g, "")).then(
        function () {
          if (keyStatus) {
            keyStatus.textContent = "Key copied. Paste it into your authentication app.";
          }
        },
        function () {
          if (keyStatus) {
            keyStatus.textContent = "Could not copy. Select the key and copy it by hand.";
          }
        }
      );
    });
  });

  // The code sheet: Print and Copy need JavaScript, so they stay hidden without it.
  var sheetText = document.querySelector("[data-codes-text]");
  var printButton = document.querySelector("[data-action=print]");
  var copyButton = document.querySelector("[data-action=copy]");
  if (!sheetText) {
    return;
  }
  var status = document.querySelector("[data-copy-status]");

  if (printButton) {
    printButton.hidden = false;
    printButton.addEventListener("click", function () {
      window.print();
    });
  }

  if (copyButton && canCopy) {
    copyButton.hidden = false;
    copyButton.addEventListener("click", function () {
      // The same text as Download (settings/codes.txt), rendered by the server into the page.
      var text = sheetText.textContent;
      var count = (text.match(/^ *\d+\. \d{4} \d{4}$/gm) || []).length;
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
