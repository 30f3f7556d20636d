--[[
kbatch's server-side rewrite for Slurm: a job_submit/lua plugin script.

Install it as `job_submit.lua` in the directory of slurm.conf (/etc/slurm/ on Debian) and set
`JobSubmitPlugins=lua` in slurm.conf (docs/install.md). slurmctld runs it for every job, however it
was submitted (sbatch, Slurm's TORQUE qsub wrapper, salloc, srun, the REST API), and a user cannot
skip it: this is the integration point that enforces kbatch's rewrite and the site policy at
submission. Debian 12's slurmctld links job_submit_lua.so against Lua 5.1; this script uses nothing
newer.

For each batch job it runs `kbatch submit-filter` (TORQUE's SUBMITFILTER contract: script on stdin,
new script on stdout, exit 255 rejects) as the job's owner, in the job's working directory, and:
  - stores the rewritten script when kbatch rewrote it (a containerised job);
  - leaves the job exactly as submitted when kbatch returns it unchanged (a native job);
  - refuses the job with kbatch's one-line reason (sent to the user with slurm.log_user, shown by
    sbatch/qsub as "error: ...") when kbatch rejects it (site policy, malformed script);
  - when kbatch itself cannot run: refuses the job (fail-closed, the default) or lets it through
    unchanged (fail-open), as `on_error` below says.

Settings come from slurmctld's environment (set them in its systemd unit with Environment=), else
the defaults below:
  KBATCH_EXECUTABLE    the kbatch binary on this host and on the compute nodes (/usr/bin/kbatch)
  KBATCH_ON_ERROR      closed | open: what happens when kbatch itself fails (closed)
--]]

local kbatch_executable = os.getenv("KBATCH_EXECUTABLE") or "/usr/bin/kbatch"
local on_error = os.getenv("KBATCH_ON_ERROR") or "closed"

-- Slurm 22.05 calls it slurm.error; later versions also know slurm.log_error.
local logError = slurm.error or slurm.log_error or slurm.log_info

-- TORQUE's submit-filter contract: 255 = the job is rejected (kbatch wrote the reason to stderr).
local kRejectedStatus = 255

-- Whether slurmctld runs as root (SlurmUser=root): only then can kbatch run as the job's owner.
local function runningAsRoot()
  local pipe = io.popen("id -u")
  if pipe == nil then
    return false
  end
  local uid = pipe:read("*l")
  pipe:close()
  return uid == "0"
end
local kAsRoot = runningAsRoot()

-- Quotes a string for /bin/sh: inside single quotes only the single quote itself needs care.
local function shellQuote(text)
  return "'" .. string.gsub(text, "'", "'\\''") .. "'"
end

local function readFile(path)
  local handle = io.open(path, "rb")
  if handle == nil then
    return nil
  end
  local content = handle:read("*a")
  handle:close()
  return content
end

local function writeFile(path, content)
  local handle, message = io.open(path, "wb")
  if handle == nil then
    return false, message
  end
  handle:write(content)
  handle:close()
  return true
end

-- The first non-empty line of kbatch's stderr: kbatch puts its whole reason on one line.
local function firstLine(text)
  for line in string.gmatch(text or "", "[^\n]+") do
    if string.find(line, "%S") then
      return line
    end
  end
  return nil
end

-- Lua 5.1's os.execute returns the wait status of system(3): the exit status is its high byte.
-- (Lua 5.2+ returns true/false, "exit"/"signal", code instead; handle both.)
local function exitStatus(first, _, code)
  if type(first) == "number" then
    if first >= 256 or first == 0 then
      return math.floor(first / 256)
    end
    return 128 + first  -- killed by signal `first`
  end
  return code or (first and 0 or 1)
end

-- Refuses the job when kbatch could not give an answer, unless the site chose fail-open.
local function kbatchFailed(job_desc, reason)
  logError("kbatch job_submit: %s (user %s)", reason, tostring(job_desc.user_id))
  if on_error == "open" then
    slurm.log_info("kbatch job_submit: fail-open: job of user %s passes unchanged",
                   tostring(job_desc.user_id))
    return slurm.SUCCESS
  end
  slurm.log_user("kbatch: the job cannot be checked (%s); ask your administrator", reason)
  return slurm.ERROR
end

-- Runs kbatch's submit filter on the script; returns the exit status, stdout and stderr.
local function runSubmitFilter(job_desc, script)
  -- os.tmpname() creates the file with mkstemp(3), mode 0600: the script is the user's, and no
  -- other user may read it; the shell creates the other two under umask 077.
  local input = os.tmpname()
  local output, errors = input .. ".out", input .. ".err"
  local ok, message = writeFile(input, script)
  if not ok then
    return nil, nil, "cannot write a temporary file: " .. tostring(message)
  end
  local work_dir = job_desc.work_dir or "/"
  -- As the job's owner when slurmctld runs as root (the script is the user's input, and the
  -- policy's per-user rules need the user), with the owner's groups and a clean environment from
  -- the account database; otherwise as SlurmUser. Relative paths in the script
  -- (`#KBATCH --from-binary ./a.out`) resolve in the submit directory, as for TORQUE's filter.
  local as_owner = ""
  if kAsRoot and job_desc.user_id ~= nil and tonumber(job_desc.user_id) ~= 0 then
    as_owner = string.format("setpriv --reuid=%d --regid=%d --init-groups --reset-env ",
                             job_desc.user_id, job_desc.group_id)
  end
  local command = string.format(
    "umask 077 && cd %s && exec %senv PBS_O_WORKDIR=%s SLURM_SUBMIT_DIR=%s %s submit-filter " ..
    "--on-error=%s --kbatch-path=%s <%s >%s 2>%s",
    shellQuote(work_dir), as_owner, shellQuote(work_dir), shellQuote(work_dir),
    shellQuote(kbatch_executable), shellQuote(on_error), shellQuote(kbatch_executable),
    shellQuote(input), shellQuote(output), shellQuote(errors))
  local status = exitStatus(os.execute(command))
  local rewritten = readFile(output)
  local diagnostics = readFile(errors) or ""
  os.remove(input)
  os.remove(output)
  os.remove(errors)
  return status, rewritten, diagnostics
end

function slurm_job_submit(job_desc, part_list, submit_uid)
  local script = job_desc.script
  if script == nil or script == "" then
    return slurm.SUCCESS  -- salloc/srun: no batch script, nothing to containerise here
  end
  local status, rewritten, diagnostics = runSubmitFilter(job_desc, script)
  if status == nil then
    return kbatchFailed(job_desc, diagnostics)
  end
  if status == kRejectedStatus then
    -- A refusal is never "open": the script or the policy said no.
    local reason = firstLine(diagnostics) or "kbatch rejected the job script"
    slurm.log_info("kbatch job_submit: refused job of user %s: %s", tostring(job_desc.user_id),
                   reason)
    slurm.log_user("%s", reason)
    return slurm.ERROR
  end
  if status ~= 0 or rewritten == nil then
    local reason = firstLine(diagnostics) or ("exit status " .. tostring(status))
    return kbatchFailed(job_desc, string.format("%s submit-filter failed: %s", kbatch_executable,
                                                reason))
  end
  if rewritten ~= script then
    job_desc.script = rewritten
    slurm.log_info("kbatch job_submit: rewrote the script of a job of user %s for a container",
                   tostring(job_desc.user_id))
  end
  return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
  -- scontrol update cannot replace a job's script: nothing to rewrite.
  return slurm.SUCCESS
end

slurm.log_info("kbatch job_submit.lua loaded (kbatch %s, on error: %s)", kbatch_executable,
               on_error)
return slurm.SUCCESS
