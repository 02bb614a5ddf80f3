//! An expect-style pseudo-terminal driver (Python's `pty` module) for CLI tests: `python3 -c DRIVER
//! '<json steps>' <program> <args...>` runs the program on a pseudo-terminal, waits for each step's text,
//! sends its answer, and prints the whole transcript followed by `EXIT=<code>`.

/// Expect-style driver: waits for each prompt text, sends the answer, returns the whole transcript.
pub const DRIVER: &str = r#"
import os, pty, sys, time, json
steps = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
out = b""
def read_until(text, timeout=120):
    # text None: until the program closes the terminal.
    global out
    end = time.time() + timeout
    while text is None or text.encode() not in out:
        if text is not None and time.time() > end:
            sys.stdout.write(out.decode(errors="replace"))
            sys.exit("timeout waiting for %r" % text)
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
for prompt, answer in steps:
    read_until(prompt)
    out = out.replace(prompt.encode(), b"<" + prompt.encode() + b">", 1)
    time.sleep(0.1)
    os.write(fd, answer.encode())
read_until(None)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.stdout.write("\nEXIT=%d\n" % os.waitstatus_to_exitcode(status))
"#;
