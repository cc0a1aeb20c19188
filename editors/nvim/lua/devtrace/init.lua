-- devtrace.nvim: sends Neovim's navigation and saves to `devtrace record`.
--
-- While a recording runs (`devtrace record start`), this plugin tells the recorder, over its
-- local socket, when a file is opened, when you jump to a definition or list references
-- (through Neovim's LSP client: source and target positions and the server's latency), and
-- when you write a buffer (the recorder computes the diff). When nothing is recorded it sends
-- nothing: each event first checks that the recording is capturing (one stat).
--
-- Set-up (any plugin manager, or `set runtimepath+=/path/to/devtrace/editors/nvim`):
--   require('devtrace').setup({})          -- plugin/devtrace.lua calls this for you
-- Options: data = the devtrace data directory (default: $DEVTRACE_DATA, else
-- $XDG_DATA_HOME/devtrace, else ~/.local/share/devtrace); wrap_lsp = true (route
-- vim.lsp.buf.definition and vim.lsp.buf.references through the plugin so they are recorded;
-- false leaves them alone and :DevtraceDefinition / :DevtraceReferences do it);
-- max_references = 50 (references listed in an event; the count is always whole).
--
-- Positions are 1-based lines and columns, as an editor shows them.
-- Works with Neovim 0.7 and newer.

local M = {}

local uv = vim.uv or vim.loop

M.config = {
  data = nil,
  wrap_lsp = true,
  max_references = 50,
}

local state = {
  pipe = nil,
  connecting = false,
  queue = {},
  original = {},
  sent = 0,
  answered = 0,
}

local function data_dir()
  if M.config.data and M.config.data ~= '' then
    return M.config.data
  end
  local env = os.getenv('DEVTRACE_DATA')
  if env and env ~= '' then
    return env
  end
  local xdg = os.getenv('XDG_DATA_HOME')
  if xdg and xdg ~= '' then
    return xdg .. '/devtrace'
  end
  return (os.getenv('HOME') or '') .. '/.local/share/devtrace'
end

local function active_dir()
  return data_dir() .. '/record/active'
end

--- Whether a recording is capturing now (the file the shell hooks check too).
function M.recording()
  return uv.fs_stat(active_dir() .. '/capturing') ~= nil
end

local function now()
  local seconds, micros = uv.gettimeofday()
  return os.date('!%Y-%m-%dT%H:%M:%S', seconds) .. string.format('.%03dZ', math.floor(micros / 1000))
end

local encode = (vim.json and vim.json.encode) or vim.fn.json_encode

local function close_pipe()
  if state.pipe then
    pcall(function()
      state.pipe:close()
    end)
  end
  state.pipe = nil
  state.connecting = false
end

local function flush()
  if not state.pipe then
    return
  end
  for _, line in ipairs(state.queue) do
    state.pipe:write(line)
  end
  state.queue = {}
end

--- Sends one event to the recorder (queued while the connection is being made).
function M.send(event)
  if not M.recording() then
    return false
  end
  event.t = event.t or now()
  event.editor = 'nvim'
  local line = encode({ op = 'event', event = event }) .. '\n'
  table.insert(state.queue, line)
  state.sent = state.sent + 1
  if state.pipe then
    flush()
    return true
  end
  if state.connecting then
    return true
  end
  state.connecting = true
  local pipe = uv.new_pipe(false)
  pipe:connect(active_dir() .. '/sock', function(err)
    if err then
      state.queue = {}
      pcall(function()
        pipe:close()
      end)
      state.connecting = false
      return
    end
    state.pipe = pipe
    state.connecting = false
    -- Answers are read and dropped; a closed connection is opened again next time.
    pipe:read_start(function(read_err, data)
      if read_err or not data then
        close_pipe()
        return
      end
      local _, answers = data:gsub('\n', '')
      state.answered = state.answered + answers
    end)
    flush()
  end)
  return true
end

local function buffer_path(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == '' or vim.bo[bufnr].buftype ~= '' then
    return nil
  end
  return vim.fn.fnamemodify(name, ':p')
end

--- The buffer's file type, or nil (the recorder then names the language from the path).
local function filetype(bufnr)
  local ft = vim.bo[bufnr].filetype
  if ft == '' then
    return nil
  end
  return ft
end

--- The symbol under the cursor and its 1-based range.
local function source_position()
  local bufnr = vim.api.nvim_get_current_buf()
  local cursor = vim.api.nvim_win_get_cursor(0)
  local line = vim.api.nvim_get_current_line()
  local col = cursor[2] + 1
  local first, last = col, col - 1
  while first > 1 and line:sub(first - 1, first - 1):match('[%w_]') do
    first = first - 1
  end
  while last < #line and line:sub(last + 1, last + 1):match('[%w_]') do
    last = last + 1
  end
  local symbol = line:sub(first, last)
  return {
    file_path = buffer_path(bufnr),
    symbol = symbol,
    range = {
      start = { line = cursor[1], col = first },
      ['end'] = { line = cursor[1], col = last + 1 },
    },
  }
end

--- Locations from every client's answer (Location, Location[] or LocationLink[]), with the
--- offset encoding of the client that gave each.
local function collect(results)
  local found = {}
  for client_id, response in pairs(results or {}) do
    local result = response.result
    if result then
      local client = vim.lsp.get_client_by_id(client_id)
      local encoding = client and client.offset_encoding or 'utf-16'
      if result.uri or result.targetUri then
        result = { result }
      end
      for _, location in ipairs(result) do
        table.insert(found, { location = location, encoding = encoding })
      end
    end
  end
  return found
end

local function target_of(location)
  local uri = location.targetUri or location.uri
  local range = location.targetSelectionRange or location.range
  return {
    file_path = vim.uri_to_fname(uri),
    line = range.start.line + 1,
    col = range.start.character + 1,
  }
end

local function jump(item)
  if vim.lsp.util.show_document then
    vim.lsp.util.show_document(item.location, item.encoding, { focus = true })
  else
    vim.lsp.util.jump_to_location(item.location, item.encoding)
  end
end

local function to_quickfix(found, title)
  local items = {}
  for _, item in ipairs(found) do
    vim.list_extend(items, vim.lsp.util.locations_to_items({ item.location }, item.encoding))
  end
  vim.fn.setqflist({}, ' ', { title = title, items = items })
  vim.cmd('copen')
end

local function request(method, extra, on_result)
  local params = vim.lsp.util.make_position_params()
  for key, value in pairs(extra or {}) do
    params[key] = value
  end
  local source = source_position()
  local started = now()
  local clock = uv.hrtime()
  vim.lsp.buf_request_all(0, method, params, function(results)
    local latency = (uv.hrtime() - clock) / 1e6
    on_result(collect(results), source, started, math.floor(latency * 1000 + 0.5) / 1000)
  end)
end

--- Go to the definition under the cursor (as vim.lsp.buf.definition does), recorded.
function M.definition()
  request('textDocument/definition', nil, function(found, source, started, latency)
    local event = {
      t = started,
      type = 'go_to_definition',
      source = source,
      latency_ms = latency,
      targets = #found,
    }
    if #found > 0 then
      event.target = target_of(found[1].location)
    end
    M.send(event)
    if #found == 0 then
      vim.notify('No definition found', vim.log.levels.INFO)
    elseif #found == 1 then
      jump(found[1])
    else
      to_quickfix(found, 'Definitions')
    end
  end)
end

--- List the references of the symbol under the cursor in the quickfix list, recorded.
function M.references()
  request('textDocument/references', { context = { includeDeclaration = true } }, function(found, source, started, latency)
    local references = {}
    for index, item in ipairs(found) do
      if index > M.config.max_references then
        break
      end
      table.insert(references, target_of(item.location))
    end
    M.send({
      t = started,
      type = 'find_references',
      source = source,
      latency_ms = latency,
      count = #found,
      references = references,
    })
    if #found == 0 then
      vim.notify('No references found', vim.log.levels.INFO)
    else
      to_quickfix(found, 'References')
    end
  end)
end

--- Events sent to the recorder and answers read back (an answer means journaled).
function M.stats()
  return { sent = state.sent, answered = state.answered }
end

--- Restores what setup() changed.
function M.teardown()
  for name, original in pairs(state.original) do
    vim.lsp.buf[name] = original
  end
  state.original = {}
  pcall(vim.api.nvim_del_augroup_by_name, 'devtrace')
  close_pipe()
end

function M.setup(options)
  M.config = vim.tbl_extend('force', M.config, options or {})
  local group = vim.api.nvim_create_augroup('devtrace', { clear = true })
  vim.api.nvim_create_autocmd('BufReadPost', {
    group = group,
    callback = function(args)
      local path = buffer_path(args.buf)
      if path then
        M.send({ type = 'file_opened', file_path = path, language = filetype(args.buf) })
      end
    end,
  })
  vim.api.nvim_create_autocmd('BufWritePost', {
    group = group,
    callback = function(args)
      local path = buffer_path(args.buf)
      if path then
        M.send({ type = 'edit', file_path = path, language = filetype(args.buf) })
      end
    end,
  })
  if M.config.wrap_lsp and next(state.original) == nil then
    state.original.definition = vim.lsp.buf.definition
    state.original.references = vim.lsp.buf.references
    vim.lsp.buf.definition = function()
      M.definition()
    end
    vim.lsp.buf.references = function()
      M.references()
    end
  end
  vim.api.nvim_create_user_command('DevtraceDefinition', M.definition, {})
  vim.api.nvim_create_user_command('DevtraceReferences', M.references, {})
  vim.api.nvim_create_user_command('DevtraceNote', function(command)
    if not M.send({ type = 'thought', raw = command.args }) then
      vim.notify('devtrace: not recording (devtrace record start)', vim.log.levels.WARN)
    end
  end, { nargs = '+' })
end

return M
