#!/bin/sh
# mmdebstrap customize hook of the fleet lab image ($1 is the image root).
# Each container boots systemd as PID 1 and generates its own SSH host keys.
set -eu
root="$1"
shift
rm -f "$root"/etc/ssh/ssh_host_*
# sshd, postgres, redis and nginx start only once fleet-up has configured them (their ports are per instance)
for unit in ssh.service postgresql.service redis-server.service nginx.service; do
  chroot "$root" systemctl disable "$unit" >/dev/null 2>&1 || true
done
chroot "$root" systemctl mask getty@tty1.service console-getty.service systemd-logind.service \
  systemd-resolved.service apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service >/dev/null 2>&1 || true
# the Debian cluster created by postgresql-common is replaced by fleet-up's own (port, auth)
chroot "$root" pg_dropcluster 15 main >/dev/null 2>&1 || true
# the non-root account Ansible logs in with (its key is authorised by fleet-up)
chroot "$root" useradd --create-home --shell /bin/bash ansible
printf 'ansible ALL=(ALL) NOPASSWD: ALL\n' > "$root"/etc/sudoers.d/ansible
chmod 0440 "$root"/etc/sudoers.d/ansible
chroot "$root" apt-get clean
# the client libraries of the probes: .deb files only (playbooks/prepare.yml installs them)
chroot "$root" apt-get install --download-only -y -q "$@" >/dev/null
