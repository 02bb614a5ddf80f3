# Suspend and resume: running = false stops the instance in StopCharging mode and tells the stack not to
# connect; nothing is replaced (every id stays as applied). running = true starts it again.

mock_provider "alicloud" {
  source = "./tests/mocks/alicloud"
}

mock_provider "cloudcode" {
  source = "./tests/mocks/cloudcode"
}

run "create" {
  # The mocks "apply" the default configuration, so the following plans start from a real state.
  command = apply

  assert {
    condition     = alicloud_instance.this.status == "Running"
    error_message = "created running"
  }
}

run "suspend_stops_the_instance_without_replacing_anything" {
  command = plan

  variables {
    running = false
  }

  assert {
    condition     = alicloud_instance.this.status == "Stopped" && alicloud_instance.this.stopped_mode == "StopCharging"
    error_message = "suspend must plan status = Stopped with StopCharging"
  }
  # A replaced resource would have an unknown id in the plan, which fails these conditions.
  assert {
    condition     = alicloud_instance.this.id == run.create.instance_id
    error_message = "the instance must be updated in place, not replaced"
  }
  assert {
    condition     = alicloud_eip_association.this.id == run.create.eip_association_id && alicloud_eip_address.this[0].id == run.create.eip_allocation_id
    error_message = "the EIP and its association stay"
  }
  assert {
    condition     = cloudcode_stack.this.id == run.create.stack_id && cloudcode_snapshot_backup.this.id == run.create.backup_id
    error_message = "the stack and its backup stay"
  }
  assert {
    condition     = alicloud_vpc.this.id == run.create.vpc_id && alicloud_ecs_key_pair.this.id == run.create.key_pair_id
    error_message = "network and key pair stay"
  }
  assert {
    condition     = cloudcode_stack.this.host_running == false
    error_message = "the stack must not connect to a stopped host"
  }
}

run "suspend" {
  command = apply

  variables {
    running = false
  }

  assert {
    condition     = alicloud_instance.this.status == "Stopped" && alicloud_instance.this.id == run.create.instance_id
    error_message = "suspended in place"
  }
}

run "resume_starts_the_same_instance" {
  command = plan

  variables {
    running = true
  }

  assert {
    condition     = alicloud_instance.this.status == "Running" && alicloud_instance.this.id == run.create.instance_id
    error_message = "resume must start the same instance"
  }
  assert {
    condition     = cloudcode_stack.this.host_running && cloudcode_stack.this.id == run.create.stack_id
    error_message = "the stack resumes in place"
  }
}
