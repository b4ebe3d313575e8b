"""The administration's side: report cards and status changes for service managers."""
