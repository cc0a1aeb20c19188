# A Mix project with no dependencies, planned and run under `devtrace run --plan -- mix run` by
# tests/e2e/test_beam_plan.py.
defmodule Kiosk.MixProject do
  use Mix.Project

  def project, do: [app: :kiosk, version: "0.1.0", elixir: "~> 1.14", deps: []]

  def application, do: [extra_applications: [:logger]]
end
