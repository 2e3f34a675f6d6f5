// The cabinet's phone binding, second step: the person enters the code from the SMS and the
// binding statement (the form's data-statement, base64, made by the portal) is signed with
// his SIGN key through the signing client (signer.js); the signature goes into the hidden
// "cms" field and the form is submitted normally (the portal checks the code and the
// signature). A signature made before (a retry after a mistyped code) is reused.
(function () {
  "use strict";
  var form = document.getElementById("bind-form");
  if (!form || !window.Signer) {
    return;
  }
  var cms = form.querySelector('input[name="cms"]');
  var status = document.getElementById("sign-status");
  var button = form.querySelector('button[type="submit"]');
  form.addEventListener("submit", function (event) {
    if (cms.value) {
      return;
    }
    event.preventDefault();
    button.disabled = true;
    window.Signer.working(status);
    window.Signer.signBase64("SIGNATURE", form.dataset.statement, true, form.dataset.storage)
      .then(function (signature) {
        cms.value = signature;
        form.submit();
      })
      .catch(function (error) {
        button.disabled = false;
        window.Signer.report(error, status);
        button.focus();
      });
  });
})();
