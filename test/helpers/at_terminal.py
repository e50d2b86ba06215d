# Run a command in a pseudo-terminal, as a person at a terminal would, typing keys at given times.
# usage: python3 at_terminal.py KEYS_JSON -- command args...
#   KEYS_JSON: [[seconds_after_trigger, "keys"], ...]; the clock starts when the output first contains "keys:"
# Prints everything the command wrote to the terminal; exits with the command's exit status.
import json, os, pty, select, sys, time

keys = json.loads(sys.argv[1])
cmd = sys.argv[sys.argv.index('--') + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
out = b''
t0 = None
deadline = time.time() + 60
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
    if t0 is None and b'keys:' in out:
        t0 = time.time()
    while t0 is not None and keys and time.time() - t0 >= keys[0][0]:
        os.write(fd, keys.pop(0)[1].encode())
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))
