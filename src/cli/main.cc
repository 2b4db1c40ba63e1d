// The `kura` binary. Everything it does is in kura_cli (KuraMain,
// kura_main.cc): this file stays out of that library so that the unit tests,
// which link it, keep their own main.
#include "cli/kura_main.h"

int main(int argc, char** argv) { return kura::cli::KuraMain(argc, argv); }
