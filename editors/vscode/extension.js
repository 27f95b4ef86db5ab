// A minimal client: VS Code starts `specc lsp` and talks LSP with it over stdin/stdout.
// The server does the work (diagnostics, hover, definition, completion, symbols): docs/editors.md.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("specc");
  const serverOptions = {
    command: config.get("server.command", "specc"),
    args: config.get("server.args", ["lsp"]),
  };
  const clientOptions = {
    documentSelector: [
      { scheme: "file", language: "specc" },
      { scheme: "untitled", language: "specc" },
    ],
  };
  client = new LanguageClient("specc", "specc language server", serverOptions, clientOptions);
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
