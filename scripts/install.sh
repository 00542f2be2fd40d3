#!/usr/bin/env bash
# Installs the static chaos-tools binaries with their man pages and shell completions.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(chaos_root)

tools=(cpu-hog memory-leak net-partition latency-injector pod-killer)
dist="$root/dist"
uninstall=0
prefix=""

usage() {
  cat <<TXT
Usage: scripts/install.sh [PREFIX] [--uninstall] [--from DIR]

Installs ${tools[*]}
with man pages and bash, zsh and fish completions under PREFIX (default /usr/local as
root, ~/.local otherwise), and says what it put where. The binaries come from DIR
(default dist/, built with scripts/build-static.sh when missing).

  --uninstall  remove what this script installs under PREFIX, and nothing else
  --from DIR   install from DIR instead of dist/
  -h, --help   this help
TXT
}

while [ $# -gt 0 ]; do
  case "$1" in
    --uninstall) uninstall=1; shift ;;
    --from) dist=${2:?--from needs a directory}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$prefix" ] || die "one PREFIX only (got '$prefix' and '$1')"; prefix=$1; shift ;;
  esac
done
if [ -z "$prefix" ]; then
  if is_root; then prefix=/usr/local; else prefix="$HOME/.local"; fi
fi
case "$prefix" in
  /*) ;;
  *) prefix="$PWD/$prefix" ;;
esac

# dest KIND TOOL: where one file of a tool goes.
dest() {
  case "$1" in
    bin) printf '%s/bin/%s\n' "$prefix" "$2" ;;
    man) printf '%s/share/man/man1/%s.1\n' "$prefix" "$2" ;;
    bash) printf '%s/share/bash-completion/completions/%s\n' "$prefix" "$2" ;;
    zsh) printf '%s/share/zsh/site-functions/_%s\n' "$prefix" "$2" ;;
    fish) printf '%s/share/fish/vendor_completions.d/%s.fish\n' "$prefix" "$2" ;;
  esac
}

# source_of KIND TOOL: the file in the build output.
source_of() {
  case "$1" in
    bin) printf '%s/%s\n' "$dist" "$2" ;;
    man) printf '%s/man/man1/%s.1\n' "$dist" "$2" ;;
    bash) printf '%s/completions/bash/%s\n' "$dist" "$2" ;;
    zsh) printf '%s/completions/zsh/_%s\n' "$dist" "$2" ;;
    fish) printf '%s/completions/fish/%s.fish\n' "$dist" "$2" ;;
  esac
}

kinds=(bin man bash zsh fish)

if [ "$uninstall" -eq 1 ]; then
  removed=0
  for tool in "${tools[@]}"; do
    for kind in "${kinds[@]}"; do
      file=$(dest "$kind" "$tool")
      if [ -f "$file" ]; then
        rm -f -- "$file"
        printf 'removed %s\n' "$file"
        removed=$((removed + 1))
      fi
    done
  done
  log "removed $removed file(s) under $prefix"
  exit 0
fi

incomplete=0
for tool in "${tools[@]}"; do
  for kind in "${kinds[@]}"; do [ -f "$(source_of "$kind" "$tool")" ] || incomplete=1; done
done
if [ "$incomplete" -eq 1 ]; then
  [ "$dist" = "$root/dist" ] || die "--from $dist lacks files: build them with scripts/build-static.sh --out $dist"
  log "building the static binaries, man pages and completions (scripts/build-static.sh)"
  "$root/scripts/build-static.sh" >/dev/null
fi

for tool in "${tools[@]}"; do
  for kind in "${kinds[@]}"; do
    file=$(dest "$kind" "$tool")
    mode=0644
    [ "$kind" = bin ] && mode=0755
    install -D -m "$mode" "$(source_of "$kind" "$tool")" "$file"
    printf 'installed %s\n' "$file"
  done
done
log "installed ${#tools[@]} tools under $prefix"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) log "note: $prefix/bin is not on your PATH" ;;
esac
