-- devtrace.nvim: loaded with the runtime path; `let g:devtrace_no_setup = 1` (or
-- vim.g.devtrace_no_setup = true) to call require('devtrace').setup({...}) yourself.
if vim.g.loaded_devtrace then
  return
end
vim.g.loaded_devtrace = true
if not vim.g.devtrace_no_setup then
  require('devtrace').setup({})
end
