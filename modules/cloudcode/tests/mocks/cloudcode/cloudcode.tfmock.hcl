# The cloudcode mock: by default the stack has no snapshot yet (a fresh install).

mock_data "cloudcode_snapshot" {
  defaults = {
    id         = null
    size       = null
    created_at = null
    version    = null
    compatible = null
  }
}
