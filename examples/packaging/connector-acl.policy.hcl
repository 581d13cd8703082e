# Least-privilege Nomad ACL policy for haproxy-nomad-connector.
#
# It reads service registrations (the Service topic of the event stream,
# /v1/services, /v1/service/:name), jobs and their versions (for check
# definitions), and allocations (job version, task group and ports of each
# instance). It never writes.
#
# Run as a Nomad job (connector.nomad.hcl), attach it to the job's workload
# identity: every task of the job then has these rights, with no token to
# create, store or rotate.
#
#   nomad acl policy apply -namespace default -job haproxy-nomad-connector \
#     -description "haproxy-nomad-connector" haproxy-nomad-connector connector-acl.policy.hcl
#
# Run under systemd (haproxy-nomad-connector.service), give it a token with
# the policy instead, in NOMAD_TOKEN (/etc/haproxy-nomad-connector/env):
#
#   nomad acl policy apply -description "haproxy-nomad-connector" haproxy-nomad-connector connector-acl.policy.hcl
#   nomad acl token create -name haproxy-nomad-connector -policy haproxy-nomad-connector
#
# Watching every namespace (`namespaces = ["*"]` in the connector's config)
# needs read-job in every namespace: since Nomad 1.9.6 a `namespace=*`
# event stream is checked against each existing namespace.
namespace "*" {
  capabilities = ["list-jobs", "read-job"]
}

# To watch only some namespaces, list them instead of "*":
# namespace "web" {
#   capabilities = ["list-jobs", "read-job"]
# }
