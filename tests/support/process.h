// Shared helpers of the tests for files and child processes: reading and
// writing whole files, a file descriptor that closes itself, a background
// child (Process) killed with its process group when it goes away, and
// programs run to completion with stdin given and stdout, stderr and the
// exit status captured (RunCommand, RunUpdnsctl). Header-only.
//
// Every child process is started in its own process group with
// PR_SET_PDEATHSIG, so a failing or crashing test leaves nothing running.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace updns::test {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Polls `condition` every `step` until it holds; false after `timeout`.
inline bool WaitUntil(const std::function<bool()>& condition, milliseconds timeout,
                      milliseconds step = milliseconds(50)) {
  auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
  return true;
}

// Waits until the file at `path` contains `text`, reading it every `step`;
// false after `timeout`.
inline bool WaitForFileText(const std::filesystem::path& path, const std::string& text,
                            milliseconds timeout, milliseconds step) {
  return WaitUntil([&] { return ReadFile(path).find(text) != std::string::npos; }, timeout, step);
}

// How often `needle` occurs in `text`, overlapping occurrences included.
inline size_t CountOf(std::string_view text, std::string_view needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + 1))
    ++count;
  return count;
}

// The lines of `text` without their '\n'.
inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A file descriptor closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// ---------------------------------------------------------------------------
// Child processes

// Forks `argv` (argv[0] a path, or looked up in PATH when `search_path`)
// into a process group of its own, with PR_SET_PDEATHSIG, in `dir`, its
// stdin from `in` (/dev/null when not ok) and stdout and stderr to `out` and
// `err`. The child's pid, or -1 with errno when fork() fails.
inline pid_t Spawn(const std::vector<std::string>& argv, const std::filesystem::path& dir,
                   const Fd& in, const Fd& out, const Fd& err, bool search_path) {
  // Everything the child needs is prepared before fork(): between fork()
  // and exec() only async-signal-safe calls are made.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::string cwd = dir.string();
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) {
    // Also from here, so that killing the group never races the child.
    if (pid > 0) ::setpgid(pid, pid);
    return pid;
  }
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  if (in.ok()) {
    ::dup2(in.get(), STDIN_FILENO);
  } else {
    int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
  }
  ::dup2(out.get(), STDOUT_FILENO);
  ::dup2(err.get(), STDERR_FILENO);
  if (::chdir(cwd.c_str()) != 0) ::_exit(127);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (search_path) {
    ::execvp(args[0], args.data());
  } else {
    ::execv(args[0], args.data());
  }
  ::_exit(127);
}

class Process {
 public:
  Process() = default;
  ~Process() { Kill(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Starts argv[0] (a path) in `cwd` with stdout and stderr appended to the
  // given files. Returns false with a message when it cannot be started.
  bool Start(const std::vector<std::string>& argv, const std::filesystem::path& cwd,
             const std::filesystem::path& stdout_path, const std::filesystem::path& stderr_path,
             std::string* error) {
    Kill();
    Fd out(::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    Fd err(::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!out.ok() || !err.ok()) {
      *error = "cannot open the output files in " + stdout_path.parent_path().string();
      return false;
    }
    pid_t pid = Spawn(argv, cwd, Fd(), out, err, /*search_path=*/false);
    if (pid < 0) {
      *error = std::string("fork: ") + std::strerror(errno);
      return false;
    }
    pid_ = pid;
    exited_ = false;
    status_ = 0;
    return true;
  }

  pid_t pid() const { return pid_; }

  // Whether the child still runs (reaps it when it has exited).
  bool Running() {
    if (pid_ <= 0 || exited_) return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      status_ = status;
      return false;
    }
    return r == 0;
  }

  // The wait status once the child has exited.
  bool exited() const { return exited_; }
  int status() const { return status_; }

  // Waits up to `timeout` for the child to exit by itself.
  bool WaitExit(milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Running()) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return exited_;
  }

  // Sends `signal` and waits up to `timeout` for the exit. False when it did
  // not exit in time (it is then killed).
  bool Stop(int signal, milliseconds timeout) {
    if (!Running()) return exited_;
    ::kill(pid_, signal);
    if (WaitExit(timeout)) return true;
    Kill();
    return false;
  }

  // SIGKILL to the child's process group (nsd's server processes too), then
  // reaps the child. The group is signalled only while the child is not
  // reaped yet, so its id cannot have been reused.
  void Kill() {
    if (pid_ > 0 && !exited_) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      int status = 0;
      if (::waitpid(pid_, &status, 0) == pid_) status_ = status;
      exited_ = true;
    }
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

inline std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

// RunCommand without a time limit.
inline constexpr milliseconds kNoTimeout = milliseconds::max();

// ---------------------------------------------------------------------------
// Programs run to completion

struct CommandResult {
  int exit_code = -1;  // -1: did not exit normally (signal, timeout, exec failure)
  bool timed_out = false;
  std::string out, err;
  std::string Describe() const {
    return "exit " + std::to_string(exit_code) + (timed_out ? " (timed out)" : "") + "\nstdout:\n" +
           out + "\nstderr:\n" + err;
  }
};

// Runs argv (argv[0] looked up in PATH when it has no '/') in `scratch` with
// `stdin_text` on its stdin; its stdout and stderr go to files in `scratch`.
// Killed (its whole process group) after `timeout` (never with kNoTimeout).
inline CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& stdin_text,
                                const std::filesystem::path& scratch,
                                milliseconds timeout = milliseconds(20000)) {
  static std::atomic<unsigned> counter{0};
  std::string tag = std::to_string(::getpid()) + "-" + std::to_string(counter++);
  std::filesystem::path in_path = scratch / ("cmd-" + tag + ".in");
  std::filesystem::path out_path = scratch / ("cmd-" + tag + ".out");
  std::filesystem::path err_path = scratch / ("cmd-" + tag + ".err");
  WriteFile(in_path, stdin_text);
  CommandResult result;
  Fd in(::open(in_path.c_str(), O_RDONLY | O_CLOEXEC));
  Fd out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  Fd err(::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!in.ok() || !out.ok() || !err.ok()) {
    result.err = "cannot create the capture files in " + scratch.string();
    return result;
  }
  pid_t pid = Spawn(argv, scratch, in, out, err, /*search_path=*/true);
  if (pid < 0) {
    result.err = std::string("fork: ") + std::strerror(errno);
    return result;
  }
  const bool bounded = timeout != kNoTimeout;
  auto deadline = bounded ? Clock::now() + timeout : Clock::time_point::max();
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) break;
    if (bounded && Clock::now() >= deadline) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  if (!result.timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  std::error_code ignored;
  std::filesystem::remove(in_path, ignored);
  std::filesystem::remove(out_path, ignored);
  std::filesystem::remove(err_path, ignored);
  return result;
}

// Whether `program` is found in PATH (or is an executable path).
inline bool HaveProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  dirs += ":/usr/sbin:/sbin";
  std::stringstream split(dirs);
  for (std::string dir; std::getline(split, dir, ':');) {
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

#ifdef UPDNSCTL_PATH
// updnsctl --config CONFIG args..., `stdin_text` on its stdin, run in `scratch`.
inline CommandResult RunUpdnsctl(const std::filesystem::path& config,
                                 const std::vector<std::string>& args,
                                 const std::string& stdin_text,
                                 const std::filesystem::path& scratch,
                                 milliseconds timeout = milliseconds(20000)) {
  std::vector<std::string> argv = {UPDNSCTL_PATH, "--config", config.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, stdin_text, scratch, timeout);
}
#endif

}  // namespace updns::test
