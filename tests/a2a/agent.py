"""An A2A echo agent for the gateway tests, written with the official a2a-sdk.

Usage: python agent.py PORT INSTANCE

The card advertises the agent's own address (http://127.0.0.1:PORT/), which the gateway must
rewrite to its own. Each message creates or continues a task: a "working" status, an
artifact, then a final status whose message is "INSTANCE: echo TEXT (turn N)", N counting
the messages this instance has seen in the context (so a test sees which replica answered
and whether the conversation stayed on it). Tasks end in INPUT_REQUIRED, so a follow-up may
continue them.
"""

import asyncio
import collections
import sys

import uvicorn
from starlette.applications import Starlette

from a2a.helpers import new_task_from_user_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill


class Echo(AgentExecutor):
    def __init__(self, instance):
        self.instance = instance
        self.turns = collections.Counter()

    async def execute(self, context: RequestContext, queue: EventQueue) -> None:
        text = context.get_user_input()
        task = context.current_task
        if task is None:
            task = new_task_from_user_message(context.message)
            await queue.enqueue_event(task)
        self.turns[task.context_id] += 1
        turn = self.turns[task.context_id]
        updater = TaskUpdater(queue, task.id, task.context_id)
        await updater.start_work(updater.new_agent_message([new_text_part(f"{self.instance}: working")]))
        await asyncio.sleep(0.02)
        reply = f"{self.instance}: echo {text} (turn {turn})"
        await updater.add_artifact([new_text_part(reply)], name="echo", last_chunk=True)
        await updater.requires_input(updater.new_agent_message([new_text_part(reply)]))

    async def cancel(self, context: RequestContext, queue: EventQueue) -> None:
        task = context.current_task
        if task is not None:
            await TaskUpdater(queue, task.id, task.context_id).cancel()


def app(port, instance):
    url = f"http://127.0.0.1:{port}/"
    card = AgentCard(
        name="echo-agent",
        description="Echoes what it is told",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="0.3"),
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="echo", description="echo", tags=["echo"])],
    )
    handler = DefaultRequestHandler(agent_executor=Echo(instance), task_store=InMemoryTaskStore(), agent_card=card)
    routes = create_agent_card_routes(card)
    routes += create_agent_card_routes(card, card_url="/.well-known/agent.json")
    routes += create_jsonrpc_routes(handler, rpc_url="/", enable_v0_3_compat=True)
    return Starlette(routes=routes)


if __name__ == "__main__":
    port, instance = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(app(port, instance), host="127.0.0.1", port=port, log_level="warning")
