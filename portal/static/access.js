// The access page of a document (the subject opened access): count down to the expiry of the
// QR code and the six-digit code. The server enforces the expiry; this only shows it. When the
// time is over the code and the QR are hidden and the page says so.
//
// Markup: an element with data-expires-at (RFC 3339) holding a <time data-countdown> for mm:ss,
// elements with data-hide-on-expiry, and a hidden [data-expired-message] shown at the end.
(function () {
  "use strict";
  var box = document.querySelector("[data-expires-at]");
  if (!box) {
    return;
  }
  var expires = Date.parse(box.getAttribute("data-expires-at"));
  var clock = box.querySelector("[data-countdown]");
  if (isNaN(expires) || !clock) {
    return;
  }
  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }
  var timer = null;
  function tick() {
    var left = Math.max(0, Math.round((expires - Date.now()) / 1000));
    clock.textContent = pad(Math.floor(left / 60)) + ":" + pad(left % 60);
    clock.setAttribute("datetime", "PT" + left + "S");
    if (left > 0) {
      return;
    }
    if (timer !== null) {
      window.clearInterval(timer);
    }
    document.querySelectorAll("[data-hide-on-expiry]").forEach(function (el) {
      el.hidden = true;
    });
    var message = document.querySelector("[data-expired-message]");
    if (message) {
      message.hidden = false;
    }
  }
  tick();
  timer = window.setInterval(tick, 1000);
})();
