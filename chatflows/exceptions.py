"""Domain errors of chat flows, mapped to JSON by `integrations.errors.exception_handler`."""

from integrations.exceptions import ServiceError


class ConversationFinishedError(ServiceError):
    status_code = 409
    code = "conversation_finished"
    default_detail = "This conversation has finished; start a new one."


class ConversationBusyError(ServiceError):
    status_code = 409
    code = "conversation_busy"
    default_detail = "The previous message of this conversation is still being handled."


class FlowInactiveError(ServiceError):
    status_code = 409
    code = "flow_inactive"
    default_detail = "This flow is not active."
