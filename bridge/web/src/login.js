// The login form of the staff and audit pages (the markup is pages/partials/login.html).

import { ApiError } from "./api.js";
import { $, status, t } from "./page.js";

/**
 * Wire the login form; resolves once `login` accepted a username and password. A refusal
 * with code `wrong_role` says `wrongRoleKey`'s text, any other failure `login.failed`.
 * @param {(username: string, password: string) => Promise<void>} login
 * @param {string} wrongRoleKey
 * @returns {Promise<void>}
 */
export function logIn(login, wrongRoleKey) {
  return new Promise((resolve) => {
    $("login-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = /** @type {HTMLButtonElement} */ ($("login-submit"));
      button.disabled = true;
      status("login-status", t("login.busy"));
      try {
        const username = /** @type {HTMLInputElement} */ ($("login-username")).value.trim();
        const input = /** @type {HTMLInputElement} */ ($("login-password"));
        await login(username, input.value);
        input.value = "";
        status("login-status", "");
        resolve();
      } catch (err) {
        const wrongRole = err instanceof ApiError && err.code === "wrong_role";
        status("login-status", t(wrongRole ? wrongRoleKey : "login.failed"));
      } finally {
        button.disabled = false;
      }
    });
  });
}
