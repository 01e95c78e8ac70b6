// tracekeepctl: command-line client of the tracekeep admin API. See ctl.h.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "collector/ctl/ctl.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const char* env_addr = std::getenv(tracekeep::ctl::kAdminAddressEnv);
  const char* env_token_file = std::getenv(tracekeep::ctl::kAdminTokenFileEnv);
  return tracekeep::ctl::RunCommandLine(args, env_addr == nullptr ? "" : env_addr,
                                        env_token_file == nullptr ? "" : env_token_file, std::cout,
                                        std::cerr);
}
