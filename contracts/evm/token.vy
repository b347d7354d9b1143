# pragma version ~=0.4.3
"""
@title Token
@notice The EVM side of the token benchmark: an ERC20-like token with the
        same ABI as the C token in contracts/ (transfer, balanceOf,
        totalSupply, Transfer event). The whole supply starts with the
        deployer.
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

balanceOf: public(HashMap[address, uint256])
totalSupply: public(uint256)


@deploy
def __init__(supply: uint256):
    self.balanceOf[msg.sender] = supply
    self.totalSupply = supply
    log Transfer(sender=empty(address), receiver=msg.sender, value=supply)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    # Vyper's checked subtraction reverts when the balance is too small.
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=msg.sender, receiver=receiver, value=amount)
    return True
