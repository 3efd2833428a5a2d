// Passkeys: "Sign in with a passkey" (#passkey-form, on the sign-in
// pages) and "Add a passkey" (#passkey-register, on the account page).
// Each asks the server for the ceremony's options (the form's
// data-options, posted with the form's own hidden fields), hands them to
// the browser's WebAuthn API, and posts the form with the authenticator's
// answer (credential) and the sealed ceremony state (state). What goes
// wrong in the browser is said in words: the texts come translated from
// the page (#passkey-error's data attributes). Without JavaScript, or
// without WebAuthn, the buttons stay hidden.
(function () {
  "use strict";
  var supported = !!(window.PublicKeyCredential && navigator.credentials && window.fetch);

  function fromB64(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function toB64(buf) {
    if (!buf) { return null; }
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function ids(list) {
    return (list || []).map(function (c) {
      var d = { type: c.type, id: fromB64(c.id) };
      if (c.transports) { d.transports = c.transports; }
      return d;
    });
  }
  function creationOptions(o) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) { return PublicKeyCredential.parseCreationOptionsFromJSON(o); }
    var c = Object.assign({}, o);
    c.challenge = fromB64(o.challenge);
    c.user = Object.assign({}, o.user, { id: fromB64(o.user.id) });
    c.excludeCredentials = ids(o.excludeCredentials);
    return c;
  }
  function requestOptions(o) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) { return PublicKeyCredential.parseRequestOptionsFromJSON(o); }
    var c = Object.assign({}, o);
    c.challenge = fromB64(o.challenge);
    c.allowCredentials = ids(o.allowCredentials);
    return c;
  }
  // credentialJSON is the answer in the WebAuthn JSON form the server
  // parses (PublicKeyCredential.toJSON where the browser has it).
  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") { return JSON.stringify(cred.toJSON()); }
    var r = cred.response, out = {
      id: cred.id, rawId: toB64(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = toB64(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = toB64(r.authenticatorData);
      out.response.signature = toB64(r.signature);
      out.response.userHandle = toB64(r.userHandle);
    }
    return JSON.stringify(out);
  }

  var box = document.getElementById("passkey-error");
  function say(text) {
    if (!box) { return; }
    box.textContent = text;
    box.hidden = false;
    box.focus();
  }
  function explain(err) {
    if (err && err.serverMessage) { say(err.serverMessage); return; }
    var name = err && err.name, d = box ? box.dataset : {};
    switch (name) {
      case "NotAllowedError": case "AbortError": say(d.cancelled); break;
      case "InvalidStateError": say(d.exists); break;
      case "SecurityError": say(d.security); break;
      case "NotSupportedError": say(d.unsupported); break;
      case "TypeError": say(d.network); break;
      default: say(d.failed);
    }
  }

  // options posts the form's hidden fields to its data-options URL and
  // returns the answer: {options, state}, or a message to show.
  function options(form) {
    var body = new URLSearchParams();
    ["csrf", "interaction"].forEach(function (n) {
      if (form.elements[n]) { body.set(n, form.elements[n].value); }
    });
    return fetch(form.dataset.options, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (res) {
      return res.json().then(function (j) {
        if (!res.ok || !j.options) { throw { serverMessage: j.error || (box && box.dataset.failed) }; }
        return j;
      });
    });
  }

  function ceremony(form, button, run) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (button.disabled) { return; }
      button.disabled = true;
      if (box) { box.hidden = true; }
      options(form).then(function (j) {
        return run(j.options).then(function (cred) {
          if (!cred) { throw { name: "NotAllowedError" }; }
          form.elements.state.value = j.state;
          form.elements.credential.value = credentialJSON(cred);
          // "Keep me signed in" of the password form counts for a passkey too.
          var keep = document.getElementById("remember");
          if (form.elements.remember && keep) { form.elements.remember.value = keep.checked ? "yes" : ""; }
          form.submit();
        });
      }).catch(function (err) {
        button.disabled = false;
        explain(err);
      });
    });
  }

  var signIn = document.getElementById("passkey-form");
  if (signIn && supported) {
    document.getElementById("passkey-signin").hidden = false;
    signIn.hidden = false;
    ceremony(signIn, document.getElementById("passkey-button"), function (o) {
      return navigator.credentials.get({ publicKey: requestOptions(o.publicKey) });
    });
  }

  var register = document.getElementById("passkey-register");
  if (register) {
    if (!supported) {
      document.getElementById("passkey-unsupported").hidden = false;
    } else {
      register.hidden = false;
      ceremony(register, register.querySelector("button[type=submit]"), function (o) {
        return navigator.credentials.create({ publicKey: creationOptions(o.publicKey) });
      });
    }
  }
})();
