# A Nomad system job that runs haproxy-nomad-connector beside HAProxy on every
# edge node. HAProxy runs on the host (Debian's package) in master-worker
# mode, with its admin stats socket and master socket under /run/haproxy, and
# loads the connector's managed file after its own config:
#   haproxy -W -S /run/haproxy/master.sock -f /etc/haproxy/haproxy.cfg -f /etc/haproxy/nomad-connector.cfg
# The three host volumes below must be declared in the nodes' client config
# (client { host_volume "haproxy-run" { path = "/run/haproxy" } ... }).
#
# No token in this job: the task talks to its local Nomad agent through the
# Task API socket and authenticates with its workload identity. Nomad gives
# that identity the policy attached to this job (run once, with a management
# token; the policy is connector-acl.policy.hcl):
#   nomad acl policy apply -namespace default -job haproxy-nomad-connector \
#     -description "haproxy-nomad-connector" haproxy-nomad-connector connector-acl.policy.hcl
# The event stream accepts workload identities from Nomad 1.9.6.
job "haproxy-nomad-connector" {
  type        = "system"
  datacenters = ["*"]
  node_pool   = "edge"

  group "connector" {
    restart {
      attempts = 10
      interval = "5m"
      delay    = "5s"
      mode     = "delay"
    }

    network {
      port "admin" {
        static = 9180
      }
    }

    volume "haproxy-run" {
      type   = "host"
      source = "haproxy-run"       # /run/haproxy: the stats and master sockets
    }
    volume "haproxy-state" {
      type   = "host"
      source = "haproxy-state"     # /var/lib/haproxy: state and map files
    }
    volume "haproxy-etc" {
      type   = "host"
      source = "haproxy-etc"       # /etc/haproxy: the managed config and HAProxy's own
    }

    task "connector" {
      driver = "exec"

      config {
        command = "/usr/local/bin/haproxy-nomad-connector"
        args    = ["run", "--config", "${NOMAD_TASK_DIR}/connector.toml"]
      }

      # The Task API: the local agent's HTTP API on a Unix socket in the
      # task's secrets directory (no TLS to set up, no agent address to find).
      env {
        NOMAD_ADDR = "unix://${NOMAD_SECRETS_DIR}/api.sock"
      }

      # The workload identity in NOMAD_TOKEN. The default identity does not
      # expire; if you give it a ttl, add change_mode = "restart" so that the
      # renewed token reaches the variable.
      identity {
        env = true
      }

      template {
        data        = <<-EOT
          [haproxy]
          stats_socket = "/run/haproxy/admin.sock"
          master_socket = "/run/haproxy/master.sock"
          managed_config = "/etc/haproxy/nomad-connector.cfg"
          state_file = "/var/lib/haproxy/nomad-connector.state"
          host_map = "/var/lib/haproxy/nomad-connector-hosts.map"
          uri_map = "/var/lib/haproxy/nomad-connector-uris.map"

          [daemon]
          # The node's address of the "admin" port: Nomad's check reaches
          # it there; never 0.0.0.0 (every interface).
          admin_listen = "{{ env "NOMAD_IP_admin" }}:{{ env "NOMAD_PORT_admin" }}"

          [log]
          format = "json"
        EOT
        destination = "local/connector.toml"
        # SIGHUP reloads plugins and settings; other sections need a restart.
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      volume_mount {
        volume      = "haproxy-run"
        destination = "/run/haproxy"
      }
      volume_mount {
        volume      = "haproxy-state"
        destination = "/var/lib/haproxy"
      }
      volume_mount {
        volume      = "haproxy-etc"
        destination = "/etc/haproxy"
      }

      # SIGTERM: the batch in flight finishes; nothing is left half-applied.
      kill_signal  = "SIGTERM"
      kill_timeout = "30s"

      resources {
        cpu    = 200
        memory = 128
      }

      service {
        name     = "haproxy-nomad-connector"
        provider = "nomad"
        port     = "admin"
        check {
          type     = "http"
          path     = "/readyz"
          interval = "10s"
          timeout  = "2s"
        }
      }
    }
  }
}
