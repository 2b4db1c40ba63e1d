// The `kura` binary's entry point, in a header of its own: main.cc includes
// only this, not CLI11 (whose header-level objects cost a Debug build 14 s of
// compiler CPU for a six-line file, docs/performance.md).
#ifndef KURA_CLI_KURA_MAIN_H_
#define KURA_CLI_KURA_MAIN_H_

namespace kura::cli {

// Builds the whole command tree (kura_main.cc), parses argv and runs the
// command; returns the process exit code.
int KuraMain(int argc, char** argv);

}  // namespace kura::cli

#endif  // KURA_CLI_KURA_MAIN_H_
