defmodule Kiosk.Server do
  @moduledoc "`use Kiosk.Server, initial: STATE, log: MODULE`: a GenServer's client functions."
  defmacro __using__(opts) do
    log = Keyword.get(opts, :log)

    quote do
      use GenServer

      def start_link(name),
        do: GenServer.start_link(__MODULE__, unquote(opts[:initial]), name: name)

      def request(server, amount) do
        unquote(log).note({:request, amount})
        GenServer.call(server, {:request, amount})
      end

      @impl true
      def init(state), do: {:ok, state}
    end
  end
end
