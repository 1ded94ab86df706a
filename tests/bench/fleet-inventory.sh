#!/usr/bin/env bash
# A fleet inventory of N hosts for scale measurements: every host is an alias of one
# of the lab's three hosts (same services, same containers, local connection), so the
# figure is the controller's cost of N hosts. Usage: fleet-inventory.sh N OUTDIR
# (run in the project's checkout; OUTDIR gets hosts.yml, group_vars -> the lab's, host_vars/)
# Copied unchanged (but for these lines) from the practice's bench kit (/work/shared/bench/fleet-inventory.sh)
# so the repository is self-contained. It serves any LAB_INSTANCE as it is: the copied host_vars and the
# linked group_vars name containers and ports from LAB_INSTANCE, so export it as tests/bench/bench.py does.
set -eu
n=$1 out=$2
rm -rf "$out"; mkdir -p "$out/host_vars"
ln -s "$PWD/inventory/lab/group_vars" "$out/group_vars"
{
  echo "all:"; echo "  children:"
  for g in backend:app-backend postgres:app-db redis:app-redis; do
    grp=${g%%:*} src=${g#*:}
    echo "    $grp:"; echo "      hosts:"
    for i in $(seq 1 "$n"); do
      case $grp in backend) [ $((i % 3)) = 1 ] || continue;; postgres) [ $((i % 3)) = 2 ] || continue;; redis) [ $((i % 3)) = 0 ] || continue;; esac
      h=$(printf '%s-%03d' "$src" "$i"); echo "        $h:"
      cp "inventory/lab/host_vars/$src.yml" "$out/host_vars/$h.yml"
    done
  done
  echo "  vars:"; echo "    ansible_connection: local"
  echo "    ansible_python_interpreter: \"{{ ansible_playbook_python }}\""
} > "$out/hosts.yml"
echo "$out: $n hosts"
